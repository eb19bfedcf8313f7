"""The device names the session list, the login history and the new-device email show."""

import pytest

from accounts.devices import device_label

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "label"),
    [
        (CHROME_LINUX, "Chrome on Linux"),
        (CHROME_LINUX.replace("Chrome/", "HeadlessChrome/"), "Headless Chrome on Linux"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0 Safari/537.36 Edg/131.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
            "Safari on iOS",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:120.0) Gecko/20100101 Firefox/120.0",
            "Firefox on macOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/131 Mobile",
            "Chrome on Android",
        ),
        ("python-requests/2.32.3", "python-requests"),
        ("curl/8.5.0", "curl"),
        ("", "Unknown device"),
        (None, "Unknown device"),
        ("MyTradingBot/1.2", "MyTradingBot"),
    ],
)
def test_device_label_names_browser_and_system(user_agent, label):
    assert device_label(user_agent) == label


def test_a_browser_update_is_not_a_new_device():
    assert device_label(CHROME_LINUX) == device_label(CHROME_LINUX.replace("131.0.0.0", "132.0.1"))
