/*
    The appliance's jest-puppeteer configuration for CATAPULT's LMS test suite (JEST_PUPPETEER_CONFIG).

    The suite's own file asks for `devtools: true`, which makes Puppeteer start a headed browser, and lets
    Puppeteer use the browser it downloads. Here the browser is Debian's Chromium (no download:
    PUPPETEER_SKIP_DOWNLOAD=1 at install), headless, with the flags the project's Playwright tests use.
*/
module.exports = {
    launch: {
        executablePath: process.env.CATAPULT_CHROMIUM || "/usr/bin/chromium",
        headless: true,
        dumpio: process.env.CATAPULT_DUMPIO === "1",
        args: [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage"
        ]
    }
};
