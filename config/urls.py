from django.contrib import admin
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView

from api.views import ApiGraphQLView
from config.views import favicon
from jobs.health import HealthView
from jobs.metrics import metrics_view

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("favicon.ico", favicon, name="favicon"),
    # CSRF is checked inside the view for session requests; token requests don't need it.
    # For probes: JSON, 200 or 503 naming the failing part; no login (it shows no data).
    path("health/", HealthView.as_view(), name="health"),
    # Prometheus scrapes: a token, an allowed address or staff (jobs/metrics.py).
    path("metrics", metrics_view, name="metrics"),
    path("graphql/", csrf_exempt(ApiGraphQLView.as_view(graphiql=True)), name="graphql"),
]
