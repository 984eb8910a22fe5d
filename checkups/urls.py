from django.urls import path

from checkups import views

app_name = "checkups"

urlpatterns = [
    path("checkups/mine/", views.my_checkups, name="mine"),
    path("checkups/mine/<int:record_id>/follow-up/", views.my_follow_up, name="mine-follow-up"),
    path("checkups/review/", views.review_queue, name="review"),
    path("checkups/review/signed/", views.review_signed, name="review-signed"),
    path("checkups/review/<int:record_id>/", views.review_record, name="review-record"),
    path("checkups/results/", views.results_list, name="results"),
    path("checkups/results/<int:record_id>/", views.results_record, name="results-record"),
    path("checkups/conclusions/", views.conclusions, name="conclusions"),
    path("checkups/conclusions/<int:record_id>/follow-up/", views.conclusion_follow_up, name="conclusion-follow-up"),
    path("checkups/dashboard/", views.dashboard, name="dashboard"),
    path("checkups/guidance/", views.guidance_summary, name="guidance-summary"),
    path("checkups/guidance/unexamined/", views.unexamined, name="unexamined"),
    path("checkups/guidance/targets/", views.guidance_targets, name="guidance-targets"),
    path("checkups/guidance/targets/<int:record_id>/", views.guidance_record, name="guidance-record"),
]
