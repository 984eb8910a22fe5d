"""Security headers on every page (IPA checklist: clickjacking, XSS defence in depth)."""


def test_login_page_sends_security_headers(client):
    response = client.get("/accounts/login/")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_session_and_csrf_cookies_are_httponly(client, world):
    from tests.conftest import TEST_PASSWORD, log_in

    response = log_in(client, "member@a.example", TEST_PASSWORD)
    cookie = response.cookies["healthapp_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


def test_production_settings_turn_on_hsts_and_secure_cookies(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='healthapp.settings'; django.setup();"
        "from django.conf import settings as s;"
        "print(s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.DEBUG)"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HEALTHAPP_ENV": "production",
        "HEALTHAPP_SECRET_KEY": "k" * 64,
        "ALLOWED_HOSTS": "health.example",
        "HEALTHAPP_VAR_DIR": str(tmp_path),
    }
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["63072000", "True", "True", "True", "False"]


def test_server_errors_show_no_details(client, settings):
    assert settings.DEBUG is False
    page = client.get("/no-such-page/")
    assert page.status_code == 404
    text = page.content.decode()
    assert "Traceback" not in text and "ページが見つかりません" in text
