from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone

from catalog.models import Feedback
from catalog.services import PRODUCT_GONE_MESSAGE


class FeedbackForm(forms.ModelForm[Feedback]):
    # Left empty by people (it is hidden); bots that fill every field fill it.
    website = forms.CharField(required=False, label="Leave this empty", max_length=200)
    date = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text="Defaults to today."
    )

    class Meta:
        model = Feedback
        fields = ["product", "title", "name", "date", "rating", "text"]
        labels = {"name": "Your name", "text": "Your review", "rating": "Rating (1–5)"}
        # Set by the product page's "Review this product" link, not chosen here.
        error_messages = {"product": {"invalid_choice": PRODUCT_GONE_MESSAGE}}
        widgets = {
            "product": forms.HiddenInput,
            # dir=auto: a review typed in a right-to-left script reads as it will be shown.
            "title": forms.TextInput(attrs={"dir": "auto"}),
            "name": forms.TextInput(attrs={"dir": "auto"}),
            "text": forms.Textarea(attrs={"rows": 6, "maxlength": 5000, "dir": "auto"}),
            "rating": forms.NumberInput(attrs={"min": 1, "max": 5}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("title", "name", "text"):
            self.fields[name].required = True
        # The model's field says min 0 (a positive integer) over the widget's 1.
        self.fields["rating"].widget.attrs["min"] = 1

    def clean_date(self) -> dt.date:
        # The model's validators then check the day (not in the future).
        return self.cleaned_data.get("date") or timezone.localdate()

    @property
    def is_bot(self) -> bool:
        return bool(self.cleaned_data.get("website"))
