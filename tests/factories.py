"""factory-boy factories for the models tests need."""

import factory
from factory.django import DjangoModelFactory, Password

from accounts.models import User

DEFAULT_PASSWORD = "Corr3ct-Horse-Battery"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n:05d}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = Password(DEFAULT_PASSWORD)
    plan = User.Plan.FREE
