/*
    The appliance's LMS adapter for CATAPULT's LMS test suite (lts/lib/lms.template.js describes the
    interface). tests/conformance/cmi5_lts.py copies this file to lib/lms.custom.js of a temporary copy
    of the suite and runs Jest there against a real `scorm-appliance serve`; everything here goes through
    the appliance's public HTTP API with one tenant's API key, as an integrator's LMS front end would:

        APPLIANCE_URL       the server, e.g. http://127.0.0.1:8080 (required)
        APPLIANCE_API_KEY   an API key of the tenant (role admin: it also issues the LRS credential)
        CATAPULT_IMPORT_TIMEOUT_MS  how long an upload may stay `processing` (default 120000)

    Packages are uploaded raw (`POST /api/v1/packages` with the file's media type) and polled until the
    background job made them `ready` or `failed`; a refusal at upload (`422 INVALID_PACKAGE`) or a failed
    version with a package failure code is the suite's InvalidPackageError, anything else a plain Error
    (so an outage never passes for a correct rejection). The LRS the suite reads statements from is the
    tenant's own `/xapi/` with a credential this adapter creates in `setup`.
*/
"use strict";

const Wreck = require("@hapi/wreck"),
    {InvalidPackageError} = require("./errors");

// The package failure codes that mean "this is not a valid package" (docs/errors.md); the others
// (QUOTA_EXCEEDED, INSUFFICIENT_STORAGE, INTERNAL_ERROR) are the server's trouble, not the package's.
const INVALID_PACKAGE_CODES = new Set([
        "MANIFEST_MISSING",
        "MANIFEST_INVALID",
        "MISSING_FILES",
        "UNSUPPORTED_VERSION",
        "UNSAFE_ARCHIVE",
        "NO_LAUNCHABLE_CONTENT",
        "INVALID_PACKAGE"
    ]),
    POLL_MS = 100,
    state = {
        base: "",
        key: "",
        lrsEndpoint: "",
        lrsKey: "",
        lrsSecret: "",
        lrsCredentialId: null,
        packages: [],
        courses: new Map(), // package id -> the package JSON (its `course`)
        registrations: new Map(), // registration -> {sessionId, packageId, registration}
        auSessions: new Map() // cmi5 session id (an AU session) -> the same entry
    };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/*
    One API request: {status, body} with the body parsed as JSON when it is JSON. Never throws for an
    HTTP status (the callers decide what each one means); throws for a transport failure.
*/
const api = async (method, path, {json, payload, headers = {}} = {}) => {
    const options = {
        headers: {Authorization: `Bearer ${state.key}`, ...headers},
        timeout: 60000
    };

    if (json !== undefined) {
        options.payload = JSON.stringify(json);
        options.headers["Content-Type"] = "application/json";
    }
    else if (payload !== undefined) {
        options.payload = payload;
    }

    const res = await Wreck.request(method, `${state.base}/api/v1${path}`, options),
        raw = await Wreck.read(res),
        text = raw.toString("utf8");
    let body = text;

    if ((res.headers["content-type"] || "").includes("json") && text) {
        try {
            body = JSON.parse(text);
        }
        catch (ex) {
            body = text;
        }
    }

    return {status: res.statusCode, body};
};

const describe = ({status, body}) => (
    body && body.code ? `${status} ${body.code}: ${body.error} ${JSON.stringify(body.details || {})}` : `${status} ${String(body).slice(0, 500)}`
);

const expectStatus = (response, expected, what) => {
    if (! [].concat(expected).includes(response.status)) {
        throw new Error(`${what}: ${describe(response)}`);
    }

    return response.body;
};

/* Poll the package until its latest version is no longer `processing`. */
const processed = async (packageId, filename) => {
    const timeout = Number(process.env.CATAPULT_IMPORT_TIMEOUT_MS || 120000),
        deadline = Date.now() + timeout;

    while (Date.now() < deadline) {
        const pkg = expectStatus(await api("GET", `/packages/${packageId}`), 200, `GET package ${packageId}`);

        if (pkg.status !== "processing") {
            return pkg;
        }
        await sleep(POLL_MS);
    }

    throw new Error(`${filename}: package ${packageId} still processing after ${timeout} ms`);
};

/* The course's AUs in document order: the suite's `auIndex` counts them so (cmi5.xml order). */
const flattenAus = (node, out = []) => {
    for (const child of node.children || []) {
        if (child.type === "au") {
            out.push(child);
        }
        else {
            flattenAus(child, out);
        }
    }

    return out;
};

module.exports = {
    setup: async (testName) => {
        state.base = (process.env.APPLIANCE_URL || "").replace(/\/+$/, "");
        state.key = process.env.APPLIANCE_API_KEY || "";
        if (! state.base || ! state.key) {
            throw new Error("APPLIANCE_URL and APPLIANCE_API_KEY must be set");
        }

        const cred = expectStatus(
            await api("POST", "/xapi/credentials", {json: {name: `CATAPULT LTS ${testName}`, scope: "all"}}),
            201,
            "create the LRS credential"
        );

        state.lrsCredentialId = cred.id;
        state.lrsKey = cred.key;
        state.lrsSecret = cred.secret;
        // the endpoint the appliance names, on the address the suite reaches it by
        state.lrsEndpoint = `${state.base}/xapi`;
    },

    teardown: async () => {
        // never throws: the suite's afterAll logs what the failed AUs reported only after teardown returns
        if (state.lrsCredentialId) {
            try {
                const res = await api("DELETE", `/xapi/credentials/${state.lrsCredentialId}`);

                if (res.status !== 200) {
                    console.log(`teardown: revoke the LRS credential: ${describe(res)}`);
                }
            }
            catch (ex) {
                console.log(`teardown: revoke the LRS credential: ${ex}`);
            }
            state.lrsCredentialId = null;
        }
    },

    // helpers.fetchStatements adds "/statements" itself
    getLrsEndpoint: () => state.lrsEndpoint,

    getLrsAuthHeader: () => `Basic ${Buffer.from(`${state.lrsKey}:${state.lrsSecret}`).toString("base64")}`,

    importCourse: async (stream, contentType, filename) => {
        const body = await Wreck.read(stream),
            upload = await api("POST", "/packages", {payload: body, headers: {"Content-Type": contentType}});

        if (upload.status === 422 && upload.body && upload.body.code === "INVALID_PACKAGE") {
            throw new InvalidPackageError(`${filename} refused at upload: ${describe(upload)}`);
        }

        const accepted = expectStatus(upload, 202, `upload ${filename}`);

        state.packages.push(accepted.id);

        const pkg = await processed(accepted.id, filename);

        if (pkg.status === "failed") {
            const error = pkg.error || {};

            if (INVALID_PACKAGE_CODES.has(error.code)) {
                throw new InvalidPackageError(`${filename} failed: ${error.code}: ${error.message}`);
            }
            throw new Error(`${filename} failed for a reason that is not the package's: ${JSON.stringify(error)}`);
        }
        if (pkg.standard !== "cmi5" || ! pkg.course) {
            throw new Error(`${filename} is ready but not as a cmi5 course: ${JSON.stringify(pkg).slice(0, 500)}`);
        }
        state.courses.set(pkg.id, pkg);

        return pkg.id;
    },

    getLaunchUrl: async (courseId, auIndex, actor, {registration, launchMode} = {}) => {
        const pkg = state.courses.get(courseId),
            au = pkg ? flattenAus(pkg.course)[auIndex] : undefined;

        if (! au) {
            throw new Error(`course ${courseId} has no AU ${auIndex}`);
        }

        return launchUrlFor(pkg, au, actor, {registration, launchMode});
    },

    cleanup: async () => {
        for (const packageId of state.packages.splice(0)) {
            const res = await api("DELETE", `/packages/${packageId}`);

            if (! [204, 404].includes(res.status)) {
                console.log(`cleanup: DELETE package ${packageId}: ${describe(res)}`);
            }
            state.courses.delete(packageId);
        }
    },

    hasWaive: () => true,
    waiveAU: async (registration, auIndex, reason) => waive(registration, auIndex, reason),

    hasAbandon: () => true,
    abandonSession: async (sessionId) => abandon(sessionId)
};

/*
    Runtime: a registration is an appliance session on the package (`POST /api/v1/sessions`, which makes a
    session on a cmi5 version a registration; `resume: false`, so every launch the suite asks for without
    a registration gets a new one), and an AU launch is `POST /api/v1/sessions/{id}/launch?au=&launch_mode=`,
    whose `cmi5.url` is the AU's cmi5 launch URL (endpoint, fetch, actor, registration, activityId). The
    suite loads that URL itself and reads the AU's page, so the adapter hands it the AU's URL, not the
    player page that frames it. The learner is the suite's actor account name; the appliance decides the
    launch's actor (an account on its own home page), which the AUs report back to the suite.
*/
const learnerOf = (actor) => {
    if (actor.account) {
        return {id: actor.account.name, ...(actor.name ? {name: actor.name} : {})};
    }
    if (actor.mbox) {
        return {id: actor.mbox.replace(/^mailto:/, ""), ...(actor.name ? {name: actor.name} : {})};
    }

    return {id: JSON.stringify(actor)};
};

async function registrationFor (pkg, actor, registration) {
    if (registration) {
        const known = state.registrations.get(registration);

        if (! known) {
            throw new Error(`registration ${registration} was not started by this adapter`);
        }

        return known;
    }

    const session = expectStatus(
        await api("POST", "/sessions", {json: {package_id: pkg.id, learner: learnerOf(actor), resume: false}}),
        201,
        `start a registration on ${pkg.id}`
    );

    // the registration's UUID is in the session's `cmi5` (GET), and in every launch's `cmi5`
    const cmi5 = session.cmi5 || expectStatus(await api("GET", `/sessions/${session.id}`), 200, `GET ${session.id}`).cmi5;

    if (! cmi5 || ! cmi5.registration) {
        throw new Error(`the session on ${pkg.id} is not a cmi5 registration: ${JSON.stringify(session).slice(0, 500)}`);
    }

    const entry = {sessionId: session.id, packageId: pkg.id, registration: cmi5.registration};

    state.registrations.set(entry.registration, entry);

    return entry;
}

async function launchUrlFor (pkg, au, actor, {registration, launchMode}) {
    const entry = await registrationFor(pkg, actor, registration),
        query = new URLSearchParams({au: au.id, launch_mode: launchMode || "Normal"}),
        launched = expectStatus(
            await api("POST", `/sessions/${entry.sessionId}/launch?${query}`),
            200,
            `launch ${au.id} in ${entry.sessionId}`
        );

    if (! launched.cmi5 || ! launched.cmi5.url) {
        throw new Error(`the launch of ${entry.sessionId} has no cmi5 URL: ${JSON.stringify(launched).slice(0, 500)}`);
    }
    state.auSessions.set(launched.cmi5.au_session_id, entry);

    return launched.cmi5.url;
}

async function waive (registration, auIndex, reason) {
    const entry = state.registrations.get(registration),
        pkg = entry ? state.courses.get(entry.packageId) : undefined,
        au = pkg ? flattenAus(pkg.course)[auIndex] : undefined;

    if (! au) {
        throw new Error(`no AU ${auIndex} in a registration ${registration} of this adapter`);
    }
    expectStatus(
        await api("POST", `/sessions/${entry.sessionId}/cmi5/waive`, {json: {au: au.id, reason}}),
        200,
        `waive ${au.id} in ${entry.sessionId}`
    );
}

async function abandon (auSessionId) {
    const entry = state.auSessions.get(auSessionId);

    if (! entry) {
        throw new Error(`AU session ${auSessionId} was not launched by this adapter`);
    }
    expectStatus(
        await api("POST", `/sessions/${entry.sessionId}/cmi5/abandon`),
        200,
        `abandon ${auSessionId} (${entry.sessionId})`
    );
}
