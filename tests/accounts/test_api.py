from tests.conftest import TEST_PASSWORD, log_in


def test_me_requires_login_with_one_error_shape(client):
    response = client.get("/api/v1/me/")
    assert response.status_code == 403
    assert set(response.json()["error"]) == {"code", "message", "details"}


def test_me_describes_the_logged_in_user(client, world):
    log_in(client, "member@a.example", TEST_PASSWORD)
    body = client.get("/api/v1/me/").json()
    assert body["email"] == "member@a.example"
    assert body["role"] == "employee"
    assert body["tenant"] == {"slug": "tenant-a", "name": "テナントA", "kind": "company"}
    assert "name" not in body  # no roster personal data here


def test_openapi_schema_lists_the_api(client, world):
    log_in(client, "member@a.example", TEST_PASSWORD)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    assert "/api/v1/me/" in schema.content.decode()
