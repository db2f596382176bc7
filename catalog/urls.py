from __future__ import annotations

from django.urls import path

from catalog import views

app_name = "catalog"

urlpatterns = [
    path("people/", views.people_directory, name="people-directory"),
    path("people/<str:username>/", views.person_detail, name="person-detail"),
    path("catalog/", views.product_list, name="product-list"),
    path("catalog/<int:pk>/", views.product_detail, name="product-detail"),
    path("reviews/", views.review_list, name="review-list"),
    path("reviews/new/", views.review_submit, name="review-submit"),
]
