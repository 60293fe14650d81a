from django.contrib import admin

from tests.jobs_testapp.models import Widget


@admin.register(Widget)
class WidgetAdmin(admin.ModelAdmin):
    list_display = ("name", "polished")
