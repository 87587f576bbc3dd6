"""The web page in a real browser: Debian's headless Chromium, driven by selenium.

Usage: /usr/bin/python3 browser_pages.py BASE_URL INVITE_URL SHOTS_DIR

Opens the invite link, chooses a password (which signs in), looks at the list of torrents, searches,
opens a torrent's page, and signs out, saving a screenshot of each step in SHOTS_DIR. Prints one JSON
object of what it saw (the test asserts on it). A JavaScript dialog anywhere (a name that ran as
markup) is recorded, not dismissed silently.
"""
import json
import sys

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

base, invite_url, shots = sys.argv[1], sys.argv[2], sys.argv[3]
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
    seen["referrer_policy_meta"] = browser.execute_script("return document.referrer")
    shot("torrent")

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
