from __future__ import annotations

import datetime as dt
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from catalog import formats, selectors
from catalog.models import Feedback, Product
from catalog.services import PRODUCT_GONE_MESSAGE
from core.forms import ComposedTextForm


class ReviewDateFormField(forms.DateField):
    """A review's date read by ``formats.parse_date``, the rule of every path,
    in place of the forms of the locale (``DATE_INPUT_FORMATS``: ``10/25/2006``,
    which reads another day where the day comes first). A date picker sends
    ``YYYY-MM-DD``; typed, it is trimmed and takes a month or day of one digit,
    unless ``exact`` (the API's filters, as its schema gives them)."""

    def __init__(self, *, exact: bool = False, **kwargs: Any) -> None:
        self.exact = exact
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> dt.date | None:
        if value in self.empty_values:
            return None
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return formats.parse_date(str(value), exact=self.exact)
        except formats.FormatError:
            raise ValidationError(f"Enter a date in {formats.DATE_FORM} form.", code="invalid") from None


class HoneypotField(forms.Field):
    """Left empty by people (the page hides it); bots that fill every field
    fill it. It never refuses a value: a limit of length or content would
    answer a bot with an error where a shorter value is dropped in silence,
    and so tell it that it was caught. Cleaned to whether it was filled."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(required=False, **kwargs)

    def clean(self, value: Any) -> bool:
        return bool(str(value or "").strip())


class FeedbackForm(ComposedTextForm, forms.ModelForm[Feedback]):
    website = HoneypotField(label="Leave this empty")
    date = ReviewDateFormField(
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
        # A product the catalog shows: one it hides has no page to review from.
        product = cast(forms.ModelChoiceField[Product], self.fields["product"])
        product.queryset = selectors.products_on_display(with_images=False)
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
