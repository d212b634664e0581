"""Fill the test project: a user, tags, posts with attachments, threaded comments."""

import datetime as dt
from decimal import Decimal

from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand

from blog.models import Comment, Post, Tag


class Command(BaseCommand):
    def handle(self, *args, **opts):
        user = User.objects.create_user("ada", "ada@example.org", "pw")
        tags = [Tag.objects.create(name=n) for n in ("alpha", "béta", "gamma-\u03b3")]
        for i in range(30):
            post = Post(title=f"Post {i} — ünïcode", body="x" * i, score=Decimal(f"{i}.25"),
                        published=dt.datetime(2024, 1, 1, 12, i, tzinfo=dt.UTC), author=user)
            if i % 3:
                post.attachment.save(f"file{i}.txt", ContentFile(f"attachment {i}\n" * i),
                                     save=False)
            post.save()
            post.tags.set(tags[: i % 4])
            top = Comment.objects.create(post=post, text="first")
            Comment.objects.create(post=post, parent=top, text="reply")
        Post.objects.filter(pk=1).update(attachment="attachments/gone.txt")  # a missing file
        with open(Post._meta.get_field("attachment").storage.path("stray.txt"), "w") as f:
            f.write("no row names me")  # an orphan
