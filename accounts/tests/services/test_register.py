import threading

import pytest
from django.db import connection

from accounts.exceptions import EmailTaken, UsernameTaken
from accounts.models import User
from accounts.services import demo_users_seed, user_register


@pytest.mark.django_db(transaction=True)
def test_concurrent_registrations_of_one_email_create_one_user():
    outcomes = []
    barrier = threading.Barrier(8)

    def register(n):
        barrier.wait()
        try:
            user_register(
                email="race@example.com",
                username=f"racer{n}",
                password="a-long-unusual-passphrase-42",
            )
            outcomes.append("created")
        except EmailTaken:
            outcomes.append("taken")
        finally:
            connection.close()

    threads = [threading.Thread(target=register, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["created"] + ["taken"] * 7
    assert User.objects.filter(email="race@example.com").count() == 1


@pytest.mark.django_db
def test_register_taken_username_raises_and_creates_nothing():
    user_register(email="a@example.com", username="alpha", password="a-long-passphrase-42")

    with pytest.raises(UsernameTaken):
        user_register(email="b@example.com", username="ALPHA", password="a-long-passphrase-42")

    assert User.objects.filter(is_system=False).count() == 1


@pytest.mark.django_db
def test_demo_seed_is_idempotent():
    demo_users_seed()
    demo_users_seed()

    assert User.objects.filter(email__endswith="@example.com").count() == 3
    assert User.objects.get(email="admin@example.com").is_superuser
