"""Proof-of-liabilities pages: the public roots, the signed-in user's proof as a download,
and the verifier script (docs/PROOF_OF_LIABILITIES.md)."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse

from wallets import liabilities
from wallets.exceptions import LiabilitySnapshotNotFound

VERIFIER_PATH = settings.BASE_DIR / "scripts" / "verify_liabilities.py"


def roots_page(request):
    """Public: the newest snapshot's roots and totals, and the earlier snapshots."""
    snapshots = liabilities.liability_snapshot_list()
    latest = liabilities.liability_roots_get(snapshot=snapshots[0]) if snapshots else None
    context = {
        "latest": latest,
        "earlier": snapshots[1:],
        "roots_api": reverse("liabilities-roots"),
    }
    return render(request, "wallets/proof_of_liabilities.html", context)


@login_required
def proof_download(request):
    """The user's proof of the newest snapshot as a JSON file for the verifier."""
    try:
        snapshot = liabilities.liability_snapshot_get()
    except LiabilitySnapshotNotFound as error:
        raise Http404(error.message) from error
    proof = liabilities.liability_proof_for_user(user=request.user, snapshot=snapshot)
    response = JsonResponse(proof, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = (
        f'attachment; filename="proof-of-liabilities-{snapshot.pk}.json"'
    )
    response["Cache-Control"] = "private, no-store"
    return response


def verifier_script(request):
    """Public: ``scripts/verify_liabilities.py`` itself, to read and run."""
    response = HttpResponse(VERIFIER_PATH.read_bytes(), content_type="text/x-python; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="verify_liabilities.py"'
    return response
