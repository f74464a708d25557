from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import TokenFamily, User, UserActivity


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "plan", "is_active", "is_staff", "date_joined")
    list_filter = ("plan", "is_active", "is_staff", "is_superuser")
    search_fields = ("username", "email")
    ordering = ("-date_joined",)
    readonly_fields = ("date_joined", "last_login")
    show_full_result_count = False
    fieldsets = (
        *DjangoUserAdmin.fieldsets,  # type: ignore[misc]
        ("Plan", {"fields": ("plan",)}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("username", "email", "plan", "password1", "password2")}),)


@admin.register(UserActivity)
class UserActivityAdmin(admin.ModelAdmin):
    list_display = ("created_at", "user", "action")
    list_filter = ("action", "created_at")
    search_fields = ("user__username", "user__email")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    date_hierarchy = "created_at"
    readonly_fields = ("user", "action", "created_at", "metadata")
    show_full_result_count = False


@admin.register(TokenFamily)
class TokenFamilyAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "created_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("user__username", "id")
    list_select_related = ("user",)
    readonly_fields = ("id", "user", "created_at")
    show_full_result_count = False
