"""A person-readable name for the device behind a user agent ("Firefox on Linux"), for the
session list, the login history and the new-device email. Deliberately coarse: it names the
browser family and the system, never a version, so an update does not make a "new device"."""

import re

# First match wins: Edge and Opera say "Chrome" too, Chrome says "Safari", so order matters.
_BROWSERS = (
    (re.compile(r"\bEdg(e|A|iOS)?/"), "Edge"),
    (re.compile(r"\bOPR/|\bOpera\b"), "Opera"),
    (re.compile(r"\bFirefox/|\bFxiOS/"), "Firefox"),
    (re.compile(r"\bChrom(e|ium)/|\bCriOS/"), "Chrome"),
    (re.compile(r"\bVersion/[\d.]+.*Safari/"), "Safari"),
    (re.compile(r"^python-requests/"), "python-requests"),
    (re.compile(r"^python-httpx/"), "httpx"),
    (re.compile(r"^aiohttp/|Python/[\d.]+ aiohttp/"), "aiohttp"),
    (re.compile(r"\bccxt/", re.IGNORECASE), "CCXT"),
    (re.compile(r"^curl/"), "curl"),
    (re.compile(r"^Python-urllib/"), "Python urllib"),
)
_SYSTEMS = (
    (re.compile(r"\bAndroid\b"), "Android"),
    (re.compile(r"\biPhone\b|\biPad\b|\biOS\b"), "iOS"),
    (re.compile(r"\bWindows\b"), "Windows"),
    (re.compile(r"\bMac OS X\b|\bMacintosh\b"), "macOS"),
    (re.compile(r"\bCrOS\b"), "ChromeOS"),
    (re.compile(r"\bLinux\b|\bX11\b"), "Linux"),
)


def device_label(user_agent: str | None) -> str:
    """``"<browser> on <system>"``, or whichever half is known, or ``"Unknown device"``."""
    agent = (user_agent or "").strip()
    browser = next((name for pattern, name in _BROWSERS if pattern.search(agent)), None)
    system = next((name for pattern, name in _SYSTEMS if pattern.search(agent)), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or system
    return "Unknown device" if not agent else agent.split("/", 1)[0][:60] or "Unknown device"
