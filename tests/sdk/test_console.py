"""The web console in real browsers, driven by Selenium over WebDriver: Debian's Chromium with its
ChromeDriver, and Debian's Firefox ESR with geckodriver (built from crates.io by .ci/run). Sign in, the overview shows the connected gateway, an API is created from the
YAML editor after a validation error, deployed and seen DEPLOYED without a reload, a key is
shown once, and a viewer sees no deploy button while the API refuses the viewer's deploy. No
request leaves 127.0.0.1 and no script error is logged."""

import os
import shutil
import uuid

import httpx
import pytest

from conftest import ADMIN_PASSWORD, wait_until

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FIREFOX = shutil.which("firefox-esr") or shutil.which("firefox") or "/usr/bin/firefox-esr"
GECKODRIVER = shutil.which("geckodriver") or os.path.expanduser("~/.cargo/bin/geckodriver")

# Selenium must use the system Chromium and ChromeDriver, never download one.
os.environ.setdefault("SE_OFFLINE", "true")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

VIEWER_PASSWORD = "viewer-password-9"


@pytest.fixture(params=["chromium", "firefox"])
def browser(request):
    if request.param == "firefox":
        if not (os.path.exists(FIREFOX) and os.path.exists(GECKODRIVER)):
            pytest.skip("Firefox or geckodriver is not installed (apt-get install firefox-esr; "
                        "cargo install geckodriver; .ci/run does both)")
        options = webdriver.FirefoxOptions()
        options.binary_location = FIREFOX
        options.add_argument("-headless")
        driver = webdriver.Firefox(service=webdriver.FirefoxService(executable_path=GECKODRIVER),
                                   options=options)
        driver.set_page_load_timeout(30)
        driver.name_for_test = "firefox"
        yield driver
        driver.quit()
        return
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip("Chromium is not installed (apt-get install chromium chromium-driver; .ci/run does it)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-first-run", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--disable-default-apps"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.name_for_test = "chromium"
    yield driver
    driver.quit()


def text_of(driver, element_id):
    found = driver.find_elements(By.ID, element_id)
    return found[0].text if found else None


def sign_in(driver, base, username, password):
    driver.get(base + "/console/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "signin").click()


def severe_logs(driver):
    """Chromium's console errors (Firefox's driver has no log API: its run checks the flows)."""
    if driver.name_for_test != "chromium":
        return []
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def requested_urls(driver):
    """Every URL the browser asked for (from Chromium's network log)."""
    import json
    if driver.name_for_test != "chromium":
        return []
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_console_end_to_end(stack, browser):
    base = stack.platform
    suffix = uuid.uuid4().hex[:6]
    api_id = "shop-" + suffix
    viewer = "viewer-" + suffix
    stack.must(stack.api.post("/users", json={"username": viewer, "password": VIEWER_PASSWORD,
                                               "role": "viewer"}), 201)

    # A wrong password: the error is shown next to the form.
    sign_in(browser, base, "admin", "not-the-password")
    error = wait_until("the sign-in error", lambda: text_of(browser, "signin-error"))
    assert "invalid username or password" in error, error
    sign_in(browser, base, "admin", ADMIN_PASSWORD)
    wait_until("the overview", lambda: "admin" in (text_of(browser, "who") or ""))

    # The overview lists the real connected gateway, live.
    wait_until("gateway edge shown connected", lambda: text_of(browser, "gw-edge-connected") == "connected")

    # The YAML editor: a validation error is shown at its field first, then the API is created.
    browser.get(base + "/console/rest-apis/new")
    editor = browser.find_element(By.ID, "document")
    editor.clear()
    bad = (f"id: {api_id}\ndisplayName: Shop\nprojectId: default\ncontext: /{api_id}\n"
           "upstream:\n  main:\n    url: not-a-url\n")
    editor.send_keys(bad)
    browser.find_element(By.ID, "save").click()
    error = wait_until("the validation error", lambda: text_of(browser, "validation-error"))
    assert "upstream.main.url" in error, error
    assert browser.find_element(By.ID, "document").get_attribute("data-error-line") == "7"
    editor = browser.find_element(By.ID, "document")
    editor.clear()
    editor.send_keys(bad.replace("not-a-url", "http://127.0.0.1:9/up"))
    browser.find_element(By.ID, "save").click()
    wait_until("the artifact page", lambda: browser.current_url.endswith(f"/console/rest-apis/{api_id}"))

    # Deployed from the console; its status turns DEPLOYED without a reload.
    Select(browser.find_element(By.ID, "deploy-gateway")).select_by_value("edge")
    browser.find_element(By.ID, "deploy").click()
    wait_until("the deployment row", lambda: browser.find_elements(By.CSS_SELECTOR, "[data-deployment]"))
    browser.execute_script("window.__notReloaded = true;")
    row = browser.find_element(By.CSS_SELECTOR, "[data-deployment]")
    dep = row.get_attribute("data-deployment")
    wait_until("DEPLOYED", lambda: text_of(browser, f"dep-{dep}-status") == "DEPLOYED")
    # Undeployed through the API while the page is open: the page follows by itself.
    stack.must(stack.api.post(f"/rest-apis/{api_id}/deployments/{dep}/undeploy", json={}), 200)
    wait_until("UNDEPLOYED shown live", lambda: text_of(browser, f"dep-{dep}-status") == "UNDEPLOYED")
    assert browser.execute_script("return window.__notReloaded === true;"), "the page was reloaded"
    stack.must(stack.api.post(f"/rest-apis/{api_id}/deployments/{dep}/restore", json={}), 200)

    # A key, shown once with a copy button, then masked.
    browser.find_element(By.ID, "key-name").send_keys("console-key")
    browser.find_element(By.ID, "create-key").click()
    key = wait_until("the key shown once", lambda: text_of(browser, "created-key-value"))
    assert len(key) > 20, key
    assert browser.find_elements(By.CSS_SELECTOR, "[data-copy='created-key-value']")
    browser.get(base + f"/console/rest-apis/{api_id}")
    assert key not in browser.page_source
    assert "console-key" in browser.find_element(By.ID, "keys").text

    # A gateway's page: a new registration token shown once, then revoked after a confirmation.
    browser.get(base + "/console/gateways/edge")
    rows_before = len(browser.find_elements(By.CSS_SELECTOR, "#tokens tbody tr"))
    browser.find_element(By.ID, "create-token").click()
    token = wait_until("the token shown once", lambda: text_of(browser, "created-token-value"))
    assert len(token) > 20, token
    rows = browser.find_elements(By.CSS_SELECTOR, "#tokens tbody tr")
    assert len(rows) == rows_before + 1
    newest = rows[0]
    newest.find_element(By.CSS_SELECTOR, "button[data-reveal]").click()
    confirm = newest.find_element(By.CSS_SELECTOR, "form.confirm")
    assert confirm.is_displayed() and "cannot connect again" in confirm.text
    confirm.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_until("the token revoked", lambda: "revoked" in browser.find_element(By.ID, "tokens").text)
    assert token not in browser.page_source
    # The edge gateway's own token still works: it stays connected.
    browser.get(base + "/console/")
    wait_until("edge still connected", lambda: text_of(browser, "gw-edge-connected") == "connected")

    # The change log, filtered by type; the audit log shows the console's changes.
    browser.get(base + "/console/changes?type=api.&gateway=edge")
    changes = browser.find_element(By.ID, "changes").text
    assert "api.deployed" in changes and "apikey" not in changes, changes
    browser.get(base + "/console/audit")
    audit = browser.find_element(By.ID, "audit").text
    assert "console" in audit and f"/api/v1/rest-apis/{api_id}/deployments" in audit, audit

    # A plan from the YAML editor, a subscription (its token shown once), a user.
    browser.get(base + "/console/plans")
    editor = browser.find_element(By.ID, "document")
    editor.clear()
    editor.send_keys(f"id: gold-{suffix}\ndisplayName: Gold\nlimits:\n  - limitCount: 5\n    timeUnit: HOUR\n")
    browser.find_element(By.ID, "save").click()
    wait_until("the plan listed", lambda: f"gold-{suffix}" in browser.find_element(By.ID, "plans").text)
    browser.find_element(By.ID, "sub-artifact").send_keys(api_id)
    browser.find_element(By.ID, "sub-subscriber").send_keys("team-a")
    browser.find_element(By.ID, "sub-plan").send_keys(f"gold-{suffix}")
    Select(browser.find_element(By.NAME, "kind")).select_by_value("RestApi")
    browser.find_element(By.ID, "subscribe").click()
    sub_token = wait_until("the subscription token", lambda: text_of(browser, "created-subscription-value"))
    assert len(sub_token) > 20
    assert "team-a" in browser.find_element(By.ID, "subscriptions").text
    browser.get(base + "/console/users")
    browser.find_element(By.ID, "new-username").send_keys("added-" + suffix)
    browser.find_element(By.ID, "new-password").send_keys("added-password-1")
    Select(browser.find_element(By.ID, "new-role")).select_by_value("editor")
    browser.find_element(By.ID, "add-user").click()
    wait_until("the user listed", lambda: "added-" + suffix in browser.find_element(By.ID, "users").text)
    row = browser.find_element(By.CSS_SELECTOR, f"tr[data-user='added-{suffix}']")
    Select(row.find_element(By.NAME, "role")).select_by_value("viewer")
    row.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_until("the role changed", lambda: stack.must(stack.api.get(f"/users/added-{suffix}"), 200)["role"] == "viewer")
    browser.get(base + "/console/audit?username=admin&failed=false")
    wait_until("the audit log", lambda: browser.find_elements(By.ID, "audit"))
    assert f"/api/v1/users/added-{suffix}" in browser.find_element(By.ID, "audit").text

    admin_logs = severe_logs(browser)
    admin_urls = requested_urls(browser)

    # A viewer: no deploy button, no editor, no key form; the API refuses the viewer's deploy.
    browser.find_element(By.ID, "signout").click()
    wait_until("the sign-in page", lambda: browser.find_elements(By.ID, "signin"))
    sign_in(browser, base, viewer, VIEWER_PASSWORD)
    wait_until("signed in as the viewer", lambda: "viewer" in (text_of(browser, "who") or ""))
    # The viewer changes their own password on their account page.
    browser.find_element(By.ID, "who").click()
    wait_until("the account page", lambda: browser.find_elements(By.ID, "password-form"))
    browser.find_element(By.ID, "current-password").send_keys(VIEWER_PASSWORD)
    browser.find_element(By.ID, "new-password-self").send_keys(VIEWER_PASSWORD + "-new")
    browser.find_element(By.ID, "change-password").click()
    assert "Password changed" in wait_until("the notice", lambda: text_of(browser, "account-notice"))
    browser.get(base + f"/console/rest-apis/{api_id}")
    for hidden in ("deploy", "create-key", "save", "delete"):
        assert not browser.find_elements(By.ID, hidden), f"a viewer sees #{hidden}"
    token = httpx.post(base + "/api/v1/auth/login",
                       json={"username": viewer, "password": VIEWER_PASSWORD + "-new"}).json()["token"]
    refused = httpx.post(base + f"/api/v1/rest-apis/{api_id}/deployments", json={"gatewayId": "edge"},
                         headers={"authorization": f"Bearer {token}"})
    assert refused.status_code == 403, refused.text

    # No script error (a refused sign-in and a refused document are answered 401 and 400 on
    # purpose, which Chromium logs as failed loads: those alone are expected), and nothing asked
    # of anything but this machine.
    logged = admin_logs + severe_logs(browser)
    expected = ("/console/login - Failed to load resource: the server responded with a status of 401",
                "/console/rest-apis/new - Failed to load resource: the server responded with a status of 400")
    errors = [e for e in logged if not (e["source"] == "network" and any(x in e["message"] for x in expected))]
    assert errors == [], errors
    urls = admin_urls + requested_urls(browser)
    assert urls or browser.name_for_test != "chromium", "no request was logged"
    foreign = [u for u in urls if not u.startswith("http://127.0.0.1:") and not u.startswith("data:")]
    assert foreign == [], foreign
