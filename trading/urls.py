from django.urls import path

from trading import views

# Pages (the API is in trading.api.urls).
urlpatterns = [
    path("trade/<str:symbol>/", views.trade, name="trade"),
]
