"""`/docs` and `/redoc` work without internet: every asset they load is served by the service."""

import re

import pytest

SERVICES = ("enrollment", "sessions", "evaluation")


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_pages_load_nothing_from_another_origin(clients, service, page):
    client = clients[service]
    html = client.get(page, headers={"Authorization": ""})
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "cdn." not in html.text and "fonts.googleapis" not in html.text
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?["']([^"']+)["']""", html.text)
    urls = [a or b for a, b in urls]
    assert urls, "the page names its assets"
    for url in urls:
        assert url.startswith("/"), f"{page} loads {url} from elsewhere"
        asset = client.get(url, headers={"Authorization": ""})
        assert asset.status_code == 200, url
    assert any(u.endswith(".js") for u in urls)


@pytest.mark.parametrize("service", SERVICES)
def test_swagger_ui_asks_no_online_validator(clients, service):
    assert '"validatorUrl": null' in clients[service].get("/docs").text


def test_an_asset_outside_the_table_is_a_404(clients):
    assert clients["sessions"].get("/docs-assets/..%2Fcore.py").status_code == 404
    assert clients["sessions"].get("/docs-assets/core.py").status_code == 404


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_serves_the_generated_asyncapi_document(clients, service):
    from shared.asyncapi import document

    served = clients[service].get("/asyncapi.json", headers={"Authorization": ""})
    assert served.status_code == 200 and served.json() == document()
