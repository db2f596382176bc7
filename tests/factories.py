"""factory_boy factories for the portal's models."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from PIL import Image as PILImage

from catalog.models import Feedback, Person, Product
from portal.tokens import token_create
from uploads import services as upload_services
from uploads.models import Image


def jpeg_bytes(size: tuple[int, int] = (800, 600), color: tuple[int, int, int] = (200, 60, 40)) -> bytes:
    """A small JPEG made in memory, with a gradient so encoders have work to do."""
    img = PILImage.linear_gradient("L").resize(size).convert("RGB")
    img = PILImage.blend(img, PILImage.new("RGB", size, color), 0.6)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class PersonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Person

    name = factory.Faker("name")
    username = factory.Sequence(lambda n: f"person{n}")
    email = factory.LazyAttribute(lambda p: f"{p.username}@example.com")
    phone = factory.LazyFunction(lambda: {"office": "802-867-5309"})
    department = factory.Iterator(["Engineering", "Sales", "Support"])
    role = "Engineer"


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    name = factory.Sequence(lambda n: f"Fruit {n}")
    weight = 100
    description = "Fresh fruit."
    image_name = factory.Sequence(lambda n: f"{n:03d}.jpeg")


class FeedbackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Feedback

    title = factory.Sequence(lambda n: f"Review {n}")
    name = factory.Faker("first_name")
    date = factory.LazyFunction(lambda: dt.date(2024, 1, 1))
    text = factory.Faker("paragraph")
    status = Feedback.Status.PUBLISHED
    source = Feedback.Source.WEB

    @classmethod
    def _create(cls, model_class: Any, *args: Any, **kwargs: Any) -> Feedback:
        return super()._create(model_class, *args, **kwargs)


class ImageFactory(factory.Factory):
    """A real image: its bytes go through ``image_upload`` (checked and stored),
    then, unless ``processed=False``, through ``image_process`` into renditions,
    as a committed upload would. Each image gets bytes of its own (a colour per
    sequence number), so its own original and renditions; ``size`` sets the
    JPEG's size, ``file`` replaces the bytes altogether.

    Under ``transactional_db`` the upload's own commit already processes it, so
    ``processed=False`` leaves it pending only inside a test's transaction.
    """

    class Meta:
        model = Image

    class Params:
        size = (400, 300)

    file = factory.LazyAttributeSequence(
        lambda o, n: jpeg_bytes(o.size, color=(n * 37 % 256, n * 71 % 256, 255 - n * 13 % 256))
    )
    original_name = factory.Sequence(lambda n: f"photo{n:03d}.jpg")
    preset = "web"
    title = ""
    alt = factory.LazyAttribute(lambda o: f"Photo {o.original_name}")
    processed = True

    @classmethod
    def _build(cls, model_class: Any, *args: Any, **kwargs: Any) -> Image:
        raise TypeError("ImageFactory only creates: an image exists once its file is stored")

    @classmethod
    def _create(cls, model_class: Any, *args: Any, processed: bool = True, **kwargs: Any) -> Image:
        image = upload_services.image_upload(**kwargs)
        if processed:
            done = upload_services.image_process(image_id=image.pk)
            assert done is not None
            image = done
        return image


def staff_with(app_label: str, *codenames: str, username: str = "clerk") -> Any:
    """A staff member holding only these permissions of one app."""
    user = UserFactory(username=username, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
    )
    return user


def api_key(user: Any) -> str:
    """The key of a new API token of ``user``, made as the portal makes one
    (the database keeps its digest; DRF's ``Token.objects.create()`` would
    store a key that does not authenticate)."""
    return token_create(user=user).key


def logged_in(user: Any) -> Client:
    """A browser signed in as ``user``."""
    client = Client()
    client.force_login(user)
    return client


# Where no S3 server listens: enough to make and sign URLs, which need only
# the keys; a request to it is refused at once.
NO_S3_SERVER = "http://127.0.0.1:9"


def s3_store(settings: Any, alias: str = "default", *, bucket: str = "media", **options: Any) -> None:
    """Make the ``alias`` store a bucket of an S3 server that is not there,
    with the given options of django-storages' S3 storage beside its own."""
    settings.STORAGES = {
        **settings.STORAGES,
        alias: {
            "BACKEND": "uploads.storage.MediaS3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": NO_S3_SERVER,
                "access_key": "key",
                "secret_key": "secret-key",
                "region_name": "us-east-1",
                **options,
            },
        },
    }
