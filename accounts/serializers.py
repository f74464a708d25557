"""Request and response shapes of the accounts API."""

from typing import Any

from django.contrib.auth.validators import UnicodeUsernameValidator
from rest_framework import serializers

from accounts.models import User


class UserOut(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "username", "plan", "is_active", "is_staff", "date_joined"]
        read_only_fields = fields


class RegisterIn(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    username = serializers.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class TokenIn(serializers.Serializer):
    username = serializers.CharField(max_length=150, required=False)
    email = serializers.EmailField(max_length=254, required=False)
    password = serializers.CharField(max_length=128, trim_whitespace=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("username")) == bool(attrs.get("email")):
            raise serializers.ValidationError({"username": ["Send either username or email."]})
        return attrs


class RefreshIn(serializers.Serializer):
    refresh = serializers.CharField(max_length=4096)


class UserPatch(serializers.Serializer):
    email = serializers.EmailField(max_length=254, required=False)
    username = serializers.CharField(max_length=150, required=False, validators=[UnicodeUsernameValidator()])
    plan = serializers.ChoiceField(choices=User.Plan.choices, required=False)
    is_active = serializers.BooleanField(required=False)
    is_staff = serializers.BooleanField(required=False)


class BulkUserIn(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    username = serializers.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    password = serializers.CharField(max_length=128, required=False, trim_whitespace=False)
    plan = serializers.ChoiceField(choices=User.Plan.choices, required=False)


class UserFilters(serializers.Serializer):
    is_active = serializers.BooleanField(required=False, allow_null=True, default=None)
    plan = serializers.ChoiceField(choices=User.Plan.choices, required=False)
    search = serializers.CharField(max_length=100, required=False, trim_whitespace=True)
    ordering = serializers.CharField(required=False)
