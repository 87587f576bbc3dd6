"""The web page in a real browser: Debian's headless Chromium, driven by selenium.

Usage: /usr/bin/python3 browser_pages.py BASE_URL INVITE_URL SHOTS_DIR TORRENT_FILE ADMIN_TOKEN

Opens the invite link, chooses a password (which signs in), looks at the list of torrents, searches,
opens a torrent's page, tries to upload TORRENT_FILE as a member (refused), uploads it as an uploader,
rotates its own passkey on the admin page as an admin (which ends the session: it signs in again),
and signs out, saving a screenshot of each step
in SHOTS_DIR. The roles are given through the operator API with ADMIN_TOKEN. Prints one JSON
object of what it saw (the test asserts on it). A JavaScript dialog anywhere (a name that ran as
markup) is recorded, not dismissed silently.
"""
import json
import sys
import time
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

base, invite_url, shots, torrent_file, admin_token = sys.argv[1:6]


def passkey_of(name):
    request = urllib.request.Request("%s/api/v1/users/%s" % (base, name),
                                     headers={"Authorization": "Bearer " + admin_token})
    return json.load(urllib.request.urlopen(request, timeout=10))["passkey"]


def set_role(name, role):
    request = urllib.request.Request(
        "%s/api/v1/users/%s/role" % (base, name), data=json.dumps({"role": role}).encode(),
        headers={"Authorization": "Bearer " + admin_token, "Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()
options = webdriver.ChromeOptions()
for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--window-size=1200,900"):
    options.add_argument(flag)
browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(browser, 20)
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

    # A seeder announces with the user's passkey (left=0): the open page shows it without a reload.
    browser.execute_script("window.notReloaded = true")
    info_hash = browser.current_url.split("hash=")[1]
    announce = seen["download_href"].split("/download/")[0] + "/announce"
    began = time.monotonic()
    urllib.request.urlopen("%s?info_hash=%s&peer_id=-LT2080-abcdefghijkl&port=6881&left=0&event=started"
                           % (announce, urllib.parse.quote(bytes.fromhex(info_hash))), timeout=10).read()
    wait.until(ready.text_to_be_present_in_element((By.CSS_SELECTOR, "p.counts .seeders"), "1"))
    seen["live_count_secs"] = round(time.monotonic() - began, 2)
    seen["not_reloaded"] = browser.execute_script("return window.notReloaded === true")

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

    # Admin: the users, and a passkey rotated from the page shows on the account page.
    set_role("alice", "admin")
    browser.get(base + "/web/account")
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "dd.announce")))
    seen["announce_before"] = browser.find_element(By.CSS_SELECTOR, "dd.announce").text
    browser.get(base + "/web/admin")
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "table.users")))
    seen["admin_users"] = texts("table.users tbody td:first-child")
    shot("admin")
    browser.find_element(By.CSS_SELECTOR, 'tr[data-user="alice"] button.rotate').click()
    # Done when the tracker has the new passkey (the operator API says).
    wait.until(lambda _: passkey_of("alice") not in seen["announce_before"])
    # Rotating a passkey ends its user's sessions: alice signs in again.
    browser.get(base + "/web/account")
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "form.sign-in")))
    seen["after_rotation"] = browser.current_url
    browser.find_element(By.NAME, "name").send_keys("alice")
    browser.find_element(By.NAME, "password").send_keys("correct horse battery")
    browser.find_element(By.CSS_SELECTOR, "form.sign-in button").click()
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
    seen["timeout"] = "%s at %s: %s" % (e.msg, browser.current_url, browser.find_element(By.TAG_NAME, "body").text[:500])
finally:
    dialog()
    seen["console"] = [entry["message"] for entry in browser.get_log("browser")] if hasattr(browser, "get_log") else []
    browser.quit()
print(json.dumps(seen))
