from django.db import models


class Widget(models.Model):
    name = models.CharField(max_length=100)
    polished = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.name
