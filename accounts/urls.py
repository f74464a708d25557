from django.urls import path

from accounts import views

urlpatterns = [
    path("auth/register", views.RegisterView.as_view(), name="auth-register"),
    path("auth/token", views.TokenView.as_view(), name="auth-token"),
    path("auth/token/refresh", views.TokenRefreshView.as_view(), name="auth-token-refresh"),
    path("auth/logout", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/me", views.MeView.as_view(), name="auth-me"),
    path("users", views.user_list, name="user-list"),
    path("users/bulk", views.UserBulkView.as_view(), name="user-bulk"),
    path("users/<int:user_id>", views.UserDetailView.as_view(), name="user-detail"),
    path("users/<int:user_id>/activity", views.UserActivityView.as_view(), name="user-activity"),
]
