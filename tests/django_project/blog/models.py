from django.db import models


class Tag(models.Model):
    name = models.CharField(max_length=50, unique=True)


class Post(models.Model):
    title = models.CharField(max_length=200)
    body = models.TextField()
    published = models.DateTimeField()
    score = models.DecimalField(max_digits=12, decimal_places=2)
    attachment = models.FileField(upload_to="attachments/", blank=True)
    tags = models.ManyToManyField(Tag)
    author = models.ForeignKey("auth.User", on_delete=models.CASCADE)


class Comment(models.Model):
    post = models.ForeignKey(Post, on_delete=models.CASCADE)
    parent = models.ForeignKey("self", null=True, on_delete=models.CASCADE)
    text = models.TextField()


class PinnedPost(Post):
    """A proxy: its rows are in blog_post (dbcrate's settings check says so)."""

    class Meta:
        proxy = True


class LegacyCode(models.Model):
    """Not managed by Django: no table is created, dbcrate leaves it out."""

    code = models.CharField(max_length=10)

    class Meta:
        managed = False
        db_table = "legacy_codes"
