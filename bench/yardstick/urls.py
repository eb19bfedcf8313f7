from django.urls import path

from bench.yardstick import views

# The exchange's paths, so the load generator runs unchanged.
urlpatterns = [
    path("api/v1/orders/", views.OrderCreateView.as_view()),
    path("api/v1/users/profile", views.ProfileView.as_view()),
]
