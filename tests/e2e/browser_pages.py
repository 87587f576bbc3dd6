"""The web page in a real browser: Debian's headless Chromium, driven by selenium.

Usage: /usr/bin/python3 browser_pages.py BASE_URL INVITE_URL SHOTS_DIR TORRENT_FILE ADMIN_TOKEN DATA_DIR

Opens the invite link, chooses a password (which signs in), looks at the list of torrents, searches,
opens a torrent's page, downloads its .torrent with the browser and starts a libtorrent seeder from
that file (the content of "Lab dataset" is in DATA_DIR) while the page stays open, tries to upload
TORRENT_FILE as a member (refused), uploads it as an uploader, is sent by another site's page to post
a form to the upload endpoint (refused), walks the list by keyboard, rotates its own passkey on the
admin page as an admin (which ends the session: it signs in again, by keyboard), and signs out,
saving a screenshot of each step in SHOTS_DIR. The roles are given through the operator API with ADMIN_TOKEN. Prints one JSON
object of what it saw (the test asserts on it). A JavaScript dialog anywhere (a name that ran as
markup) is recorded, not dismissed silently.
"""
import http.server
import json
import os
import sys
import tempfile
import threading
import time
import urllib.request

import libtorrent as lt

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

base, invite_url, shots, torrent_file, admin_token, data_dir = sys.argv[1:7]
downloads = tempfile.mkdtemp(prefix="tinytracker-downloads-")


def passkey_of(name):
    request = urllib.request.Request("%s/api/v1/users/%s" % (base, name),
                                     headers={"Authorization": "Bearer " + admin_token})
    return json.load(urllib.request.urlopen(request, timeout=10))["passkey"]


def set_role(name, role):
    request = urllib.request.Request(
        "%s/api/v1/users/%s/role" % (base, name), data=json.dumps({"role": role}).encode(),
        headers={"Authorization": "Bearer " + admin_token, "Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


def torrent_count():
    request = urllib.request.Request("%s/api/v1/torrents" % base,
                                     headers={"Authorization": "Bearer " + admin_token})
    return json.load(urllib.request.urlopen(request, timeout=10))["total"]


def seeders_of(info_hash):
    request = urllib.request.Request("%s/api/v1/torrents/%s" % (base, info_hash),
                                     headers={"Authorization": "Bearer " + admin_token})
    return json.load(urllib.request.urlopen(request, timeout=10))["seeders"]


def seeder(torrent_path):
    """A libtorrent session seeding DATA_DIR's content from the .torrent the browser saved."""
    session = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        # The passkey URL's path is /<passkey>/announce: libtorrent's SSRF guard would refuse it
        # on a loopback address.
        "ssrf_mitigation": False,
    })
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent_path)
    params.save_path = data_dir
    return session, session.add_torrent(params)


class OtherSite(http.server.BaseHTTPRequestHandler):
    """Another site's page (another port: a different origin) that posts a form to the tracker."""

    def do_GET(self):
        page = ('<!doctype html><form method="post" enctype="multipart/form-data" '
                'action="%s/api/v1/torrents"><input name="title" value="Planted">'
                '<textarea name="torrent">d4:infod4:name1:xee</textarea></form>'
                '<script>document.forms[0].submit()</script>' % base).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args):
        pass


def press_tab_until(found, limit=30):
    """Tab on from the focused element until `found(active element)`; the element or None."""
    for _ in range(limit):
        element = browser.switch_to.active_element
        if found(element):
            return element
        element.send_keys(Keys.TAB)
    return None


options = webdriver.ChromeOptions()
for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--window-size=1200,900"):
    options.add_argument(flag)
options.add_experimental_option("prefs", {"download.default_directory": downloads,
                                          "download.prompt_for_download": False})
browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
seeding = None
wait = WebDriverWait(browser, 20, poll_frequency=0.05)
seen = {"dialogs": []}


def dialog():
    """A JavaScript dialog that opened (a hostile name that ran), recorded and closed."""
    try:
        alert = browser.switch_to.alert
        seen["dialogs"].append(alert.text)
        alert.dismiss()
    except NoAlertPresentException:
        pass


def shot(name):
    dialog()
    browser.save_screenshot("%s/%s.png" % (shots, name))


def texts(selector):
    return [e.text for e in browser.find_elements(By.CSS_SELECTOR, selector)]


try:
    browser.get(invite_url)
    wait.until(ready.presence_of_element_located((By.NAME, "password")))
    seen["invite_heading"] = browser.find_element(By.TAG_NAME, "h1").text
    shot("invite")
    browser.find_element(By.NAME, "password").send_keys("correct horse battery")
    browser.find_element(By.NAME, "again").send_keys("correct horse battery")
    browser.find_element(By.CSS_SELECTOR, "form.invite button").click()
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "table.torrents")))
    seen["signed_in_nav"] = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#nav > *") if e.is_displayed()]
    seen["titles"] = texts("table.torrents tbody td:first-child")
    seen["img_elements"] = len(browser.find_elements(By.CSS_SELECTOR, "main img"))
    shot("list")

    search = browser.find_element(By.CSS_SELECTOR, "input[type=search][name=q]")
    search.send_keys("dataset")
    search.submit()
    wait.until(ready.url_contains("q=dataset"))
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "main p.pages")))
    seen["search_titles"] = texts("table.torrents tbody td:first-child")

    browser.find_element(By.LINK_TEXT, "Lab dataset").click()
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "p.counts")))
    seen["torrent_heading"] = browser.find_element(By.TAG_NAME, "h1").text
    seen["download_href"] = browser.find_element(By.LINK_TEXT, "Download .torrent").get_attribute("href")
    seen["files"] = texts("table.files tbody td:first-child")
    seen["main_text"] = browser.find_element(By.TAG_NAME, "main").text
    shot("torrent")

    # The browser downloads the .torrent; a libtorrent seeder started from that file announces
    # with the user's passkey, and the open page shows one more seeder without a reload.
    browser.execute_script("window.notReloaded = true")
    seen["seeders_before"] = browser.find_element(By.CSS_SELECTOR, "p.counts .seeders").text
    browser.find_element(By.LINK_TEXT, "Download .torrent").click()
    wait.until(lambda _: [n for n in os.listdir(downloads) if n.endswith(".torrent")])
    saved = os.path.join(downloads, [n for n in os.listdir(downloads) if n.endswith(".torrent")][0])
    seen["downloaded_name"] = os.path.basename(saved)
    info = lt.torrent_info(saved)
    seen["downloaded_info_hash"] = str(info.info_hashes().v1)
    seen["downloaded_trackers"] = [t.url for t in info.trackers()]
    seeding = seeder(saved)
    wait.until(lambda _: seeding[1].status().is_seeding)  # the data checked against the file
    seen["seeder_finished_checking"] = True
    # The clock starts when the tracker has counted the seeder's announce (its API says so).
    wait.until(lambda _: seeders_of(seen["downloaded_info_hash"]) > int(seen["seeders_before"]))
    began = time.monotonic()
    wait.until(ready.text_to_be_present_in_element((By.CSS_SELECTOR, "p.counts .seeders"),
                                                   str(int(seen["seeders_before"]) + 1)))
    seen["live_count_secs"] = round(time.monotonic() - began, 2)
    seen["not_reloaded"] = browser.execute_script("return window.notReloaded === true")
    shot("torrent-seeded")

    # Upload: refused for a member (the API's own words shown by the form), done for an uploader.
    browser.get(base + "/web/upload")
    wait.until(ready.presence_of_element_located((By.NAME, "torrent")))
    browser.find_element(By.NAME, "torrent").send_keys(torrent_file)
    browser.find_element(By.CSS_SELECTOR, "form.upload button[type=submit]").click()
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "form.upload p.alert:not([hidden])")))
    seen["member_upload"] = browser.find_element(By.CSS_SELECTOR, "form.upload p.alert").text
    shot("upload-refused")
    set_role("alice", "uploader")
    browser.get(base + "/web/upload")
    wait.until(ready.presence_of_element_located((By.NAME, "torrent")))
    browser.find_element(By.NAME, "torrent").send_keys(torrent_file)
    wait.until(lambda b: b.find_element(By.NAME, "title").get_attribute("value"))  # read from the file
    seen["prefilled_title"] = browser.find_element(By.NAME, "title").get_attribute("value")
    browser.find_element(By.NAME, "tags").send_keys("fresh, upload")
    browser.find_element(By.CSS_SELECTOR, "form.upload button[type=submit]").click()
    wait.until(ready.url_contains("/web/torrent?hash="))
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "p.counts")))
    seen["uploaded_heading"] = browser.find_element(By.TAG_NAME, "h1").text
    seen["uploaded_tags"] = texts("p.tags a")

    # The uploader edits the title on the page; the list shows the new one.
    title = browser.find_element(By.CSS_SELECTOR, "form.edit input[name=title]")
    title.clear()
    title.send_keys("Field recordings, <b>remastered</b>")
    browser.find_element(By.CSS_SELECTOR, "form.edit button[type=submit]").click()
    wait.until(ready.text_to_be_present_in_element((By.TAG_NAME, "h1"), "remastered"))
    browser.get(base + "/web/?q=remastered")
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "main p.pages")))
    seen["edited_titles"] = texts("table.torrents tbody td:first-child")

    # Another site's page posts a form to the upload endpoint while alice (an uploader) is signed
    # in: the browser sends her cookie (same host, another port), the tracker refuses.
    other_site = http.server.HTTPServer(("127.0.0.1", 0), OtherSite)
    threading.Thread(target=other_site.serve_forever, daemon=True).start()
    before = torrent_count()
    browser.get("http://127.0.0.1:%d/" % other_site.server_address[1])
    wait.until(ready.url_contains(base + "/api/v1/torrents"))
    seen["cross_site_answer"] = browser.find_element(By.TAG_NAME, "body").text
    seen["cross_site_added"] = torrent_count() - before
    other_site.shutdown()
    browser.get(base + "/web/account")
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "dd.announce")))
    seen["signed_in_after_cross_site"] = True

    # A phone-width screen: nothing wider than it; and the search works by keyboard alone.
    browser.set_window_size(390, 844)
    browser.get(base + "/web/")
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "table.torrents")))
    seen["phone_overflow"] = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    shot("phone")
    browser.set_window_size(1200, 900)
    body = browser.find_element(By.TAG_NAME, "body")
    for _ in range(12):
        body = browser.switch_to.active_element
        if body.get_attribute("name") == "q":
            break
        body.send_keys(Keys.TAB)
    seen["keyboard_reached"] = browser.switch_to.active_element.get_attribute("name")
    browser.switch_to.active_element.send_keys("lab" + Keys.ENTER)
    wait.until(ready.url_contains("q=lab"))
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "main p.pages")))
    seen["keyboard_titles"] = texts("table.torrents tbody td:first-child")
    press_tab_until(lambda e: e.text == "Lab dataset").send_keys(Keys.ENTER)
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "p.counts")))
    seen["keyboard_opened"] = browser.find_element(By.TAG_NAME, "h1").text

    # Admin: the users, and a passkey rotated from the page shows on the account page.
    set_role("alice", "admin")
    browser.get(base + "/web/account")
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "dd.announce")))
    seen["announce_before"] = browser.find_element(By.CSS_SELECTOR, "dd.announce").text
    browser.get(base + "/web/admin")
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "table.users")))
    seen["admin_users"] = texts("table.users tbody td:first-child")
    shot("admin")
    seen["step"] = "rotate"
    # The page reloads itself once the rotation is done: a marker set now is gone after that, and
    # only then may the test navigate (else the page's own reload can land after it).
    browser.execute_script("window.beforeRotation = true")
    browser.find_element(By.CSS_SELECTOR, 'tr[data-user="alice"] button.rotate').click()
    # Done when the tracker has the new passkey (the operator API says) and the page has reloaded.
    wait.until(lambda _: passkey_of("alice") not in seen["announce_before"])
    wait.until(lambda b: b.execute_script("return document.readyState") == "complete"
               and not b.execute_script("return window.beforeRotation === true"))
    seen["step"] = "sign in again"
    # Rotating a passkey ends its user's sessions: alice signs in again.
    browser.get(base + "/web/account")
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "form.sign-in")))
    seen["after_rotation"] = browser.current_url
    # By keyboard: Tab to the name, type, Tab, the password, Enter.
    press_tab_until(lambda e: e.get_attribute("name") == "name").send_keys("alice" + Keys.TAB)
    browser.switch_to.active_element.send_keys("correct horse battery" + Keys.ENTER)
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "table.torrents")))
    browser.get(base + "/web/account")
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "dd.announce")))
    seen["announce_after"] = browser.find_element(By.CSS_SELECTOR, "dd.announce").text
    shot("account")

    browser.find_element(By.ID, "sign-out").click()
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "p.alert:not([hidden])")))
    seen["after_sign_out"] = browser.find_element(By.CSS_SELECTOR, "p.alert").text
    shot("signed-out")
except TimeoutException as e:
    dialog()
    seen["timeout"] = "%s at %s (step %s): %s" % (e.msg, browser.current_url, seen.get("step"),
                                                  browser.find_element(By.TAG_NAME, "body").text[:500])
finally:
    if seeding:
        seeding[0].remove_torrent(seeding[1])
    dialog()
    seen["console"] = [entry["message"] for entry in browser.get_log("browser")] if hasattr(browser, "get_log") else []
    browser.quit()
print(json.dumps(seen))
