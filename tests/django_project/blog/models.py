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
