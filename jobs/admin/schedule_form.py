"""The schedule admin's form: the service's permission check and validation as form errors."""

from __future__ import annotations

from django import forms

from jobs.errors import JobPermissionDenied
from jobs.models import Schedule
from jobs.request_functions import all_requests
from jobs.scheduling.permissions import schedule_check_write
from jobs.scheduling.store import EDITABLE
from jobs.scheduling.validation import ScheduleError, schedule_validate_as


class ScheduleForm(forms.ModelForm):
    arguments = forms.JSONField(required=False, initial=dict, widget=forms.Textarea({"rows": 4}))
    # Set by ScheduleAdmin.get_form: whose permissions the request is checked against.
    user = None

    class Meta:
        model = Schedule
        fields = ("name", *EDITABLE)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        known = ", ".join(r.name for r in all_requests())
        self.fields["request"].help_text = f"A registered request function: {known}"

    def clean(self):
        super().clean()
        data = self.cleaned_data
        if self.errors:
            return data  # the field's own error first (a bad JSON, a missing value)
        fields = {f: data.get(f) for f in self.Meta.fields if f in data}
        if self.instance.pk:
            fields.pop("name", None)
        if fields.get("arguments") is None:
            fields["arguments"] = {}
        try:
            # The permission first, as the service does: a refusal is a form error, logged
            # (here, where nothing rolls it back: the admin saves in a transaction).
            schedule_check_write(
                user=self.user, schedule=self.instance if self.instance.pk else None, fields=fields
            )
            data.update(
                schedule_validate_as(
                    user=self.user,
                    schedule=self.instance if self.instance.pk else None,
                    fields=fields,
                )
            )
        except JobPermissionDenied as exc:
            self.add_error("request" if "request" in self.fields else None, exc.message)
        except ScheduleError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return data
