<?php

declare(strict_types=1);

// The PHP client against a real appliance: tests/clients/test_clients.py starts one and passes
// SCORM_APPLIANCE_URL, SCORM_APPLIANCE_KEY, SCORM_APPLIANCE_LIMITED_KEY, COURSE_ZIP and WEBHOOK_VECTOR.
// No PHPUnit (nothing to download): each test is a closure; the last line is "N passed, N failed".

require is_file(__DIR__ . '/../vendor/autoload.php') ? __DIR__ . '/../vendor/autoload.php' : __DIR__ . '/../autoload.php';

use ScormAppliance\Client;
use ScormAppliance\Exception\CmiValidationException;
use ScormAppliance\Exception\InvalidPackageException;
use ScormAppliance\Exception\NotFoundException;
use ScormAppliance\Exception\PackageFailedException;
use ScormAppliance\Exception\PackageNotReadyException;
use ScormAppliance\Exception\RateLimitedException;
use ScormAppliance\Exception\UnauthorizedException;
use ScormAppliance\Exception\ValidationException;
use ScormAppliance\Exception\VersionConflictException;
use ScormAppliance\Exception\WebhookVerificationException;
use ScormAppliance\Model\Session;
use ScormAppliance\Webhooks;

function env(string $name): string
{
    $value = getenv($name);
    if ($value === false || $value === '') {
        fwrite(STDERR, "{$name} is not set: run this suite through tests/clients/test_clients.py (make test)\n");
        exit(1);
    }
    return $value;
}

function check(bool $condition, string $what): void
{
    if (!$condition) {
        throw new AssertionError($what);
    }
}

/** @param class-string<Throwable> $class */
function throws(string $class, callable $action): Throwable
{
    try {
        $action();
    } catch (Throwable $e) {
        check($e instanceof $class, "expected {$class}, got " . get_class($e) . ': ' . $e->getMessage());
        return $e;
    }
    throw new AssertionError("expected {$class}, nothing was thrown");
}

function learner(): string
{
    return 'php-' . bin2hex(random_bytes(5));
}

$url = env('SCORM_APPLIANCE_URL');
$key = env('SCORM_APPLIANCE_KEY');
$zip = env('COURSE_ZIP');
$client = new Client($url, $key);
const SCORE = [
    'cmi.score.raw' => '80', 'cmi.score.min' => '0', 'cmi.score.max' => '100', 'cmi.score.scaled' => '0.8',
    'cmi.completion_status' => 'completed', 'cmi.success_status' => 'passed',
];
$ready = $client->waitUntilReady($client->uploadPackage($zip, 'PHP suite')->id, 60);

$tests = [];

$tests['upload streams a file, waits until ready, versions, validate, delete'] = function () use ($client, $zip): void {
    $uploaded = $client->uploadPackage($zip, 'From a path');
    check($uploaded->status === 'processing', 'processing after upload');
    $package = $client->waitUntilReady($uploaded->id, 60);
    check($package->status === 'ready' && $package->title === 'From a path', 'ready with its title');
    check($client->rateLimit !== null && $client->rateLimit->limit > 0, 'RateLimit-* headers read');
    check($client->uploadPackageVersion($package->id, $zip)->latestVersion === 2, 'a second version');
    check(array_column($client->listPackageVersions($package->id)->data, 'version') === [1, 2], 'both versions listed');
    check($client->getPackageVersion($package->id, 1)['status'] === 'ready', 'version 1 ready');
    check($client->updatePackage($package->id, ['title' => 'Renamed'])->title === 'Renamed', 'renamed');
    check($client->validatePackage($zip)['valid'] === true, 'validates');
    $ids = [];
    for ($cursor = null, $first = true; $first || $cursor !== null; $first = false) {
        $page = $client->listPackages(limit: 1, cursor: $cursor);
        $ids = array_merge($ids, array_map(static fn ($p) => $p->id, $page->data));
        $cursor = $page->nextCursor;
    }
    check(in_array($package->id, $ids, true), 'listed across pages');
    $client->deletePackage($package->id);
    throws(NotFoundException::class, fn () => $client->getPackage($package->id));
};

$tests['a file that is not a ZIP is INVALID_PACKAGE; a ZIP without a manifest fails'] = function () use ($client): void {
    $notZip = tempnam(sys_get_temp_dir(), 'notzip');
    file_put_contents($notZip, 'not a zip at all');
    $e = throws(InvalidPackageException::class, fn () => $client->uploadPackage($notZip));
    check($e->status === 422 && $e->requestId !== null, 'status and request id');
    // The smallest ZIP: one stored file "a.txt" ("hi"), no imsmanifest.xml.
    $noManifest = tempnam(sys_get_temp_dir(), 'nomanifest');
    file_put_contents($noManifest, base64_decode(
        'UEsDBBQAAAAAAAAAIVCsKpPYAgAAAAIAAAAFAAAAYS50eHRoaVBLAQIUAxQAAAAAAAAAIVCsKpPYAgAAAAIAAAAFAAAAAAAAAAAAAACAAQAAAABhLnR4dFBLBQYAAAAAAQABADMAAAAlAAAAAAA='
    ));
    $failed = $client->uploadPackage($noManifest);
    $e = throws(PackageFailedException::class, fn () => $client->waitUntilReady($failed->id, 60));
    check($e->failureCode === 'MANIFEST_MISSING', 'MANIFEST_MISSING');
    throws(PackageNotReadyException::class, fn () => $client->createSession($failed->id, learner()));
    unlink($notZip);
    unlink($noManifest);
};

$tests['sessions: create, resume, launch, list, read, delete'] = function () use ($client, $ready): void {
    $who = learner();
    $session = $client->createSession($ready->id, $who, 'Ann Learner');
    check($session->status === 'not_started' && $session->learnerId === $who, 'a new session');
    check(str_contains((string) $session->launchUrl, '/player/'), 'launch URL');
    check($client->createSession($ready->id, $who)->id === $session->id, 'resumed');
    $fresh = $client->createSession($ready->id, $who, resume: false);
    check($fresh->id !== $session->id, 'a second one without resume');
    check(str_starts_with($client->launchSession($session->id)->launchUrl, $client->baseUrl), 'fresh launch URL');
    $ids = array_map(static fn (Session $s) => $s->id, $client->listSessions($ready->id, $who)->data);
    sort($ids);
    $expected = [$session->id, $fresh->id];
    sort($expected);
    check($ids === $expected, 'listed by learner');
    $ids = array_map(static fn (Session $s) => $s->id, $client->listSessions(learner: strtoupper(substr($who, 2)))->data);
    sort($ids);
    check($ids === $expected, 'found by a part of the learner id, case ignored');
    $client->deleteSession($fresh->id);
    throws(NotFoundException::class, fn () => $client->getSession($fresh->id));
};

$tests['PATCH with optimistic locking, and the retry helper on a real 409'] = function () use ($client, $ready): void {
    $session = $client->createSession($ready->id, learner());
    $updated = $client->updateSession($session->id, $session->version, SCORE);
    check($updated->status === 'passed' && $updated->score->scaled === 0.8, 'passed with its score');
    $e = throws(VersionConflictException::class, fn () => $client->updateSession($session->id, $session->version, ['cmi.location' => '2']));
    check($e->currentVersion() === $updated->version, 'current_version');
    $e = throws(CmiValidationException::class, fn () => $client->updateSession($session->id, $updated->version, ['cmi.score.scaled' => '7']));
    check($e->errors()[0]['element'] === 'cmi.score.scaled', 'names the element');
    $seen = [];
    $result = $client->updateSessionWithRetry($session->id, function (Session $current) use ($client, $session, &$seen): array {
        $seen[] = $current->version;
        if (count($seen) === 1) {
            $client->updateSession($session->id, $current->version, ['cmi.location' => 'elsewhere']);
        }
        return ['cmi.location' => ($current->cmi['cmi.location'] ?? '') . '+mine'];
    });
    check(count($seen) === 2 && $seen[1] === $seen[0] + 1, 'read again after the 409');
    check($client->getSession($session->id, true)->cmi['cmi.location'] === 'elsewhere+mine', 'decided on fresh data');
    check($result->version === $seen[1] + 1, 'one more version');
};

$tests['analytics'] = function () use ($client, $ready): void {
    $session = $client->createSession($ready->id, learner());
    $client->updateSession($session->id, $session->version, SCORE);
    $report = $client->packageAnalytics($ready->id);
    check($report['passed'] >= 1 && $report['score']['count'] >= 1, 'package report');
    check($client->analyticsSummary(7)['sessions']['by_status']['passed'] >= 1, 'summary');
    check(str_contains($client->packageAnalyticsCsv($ready->id, 'sessions_by_status'), 'passed'), 'CSV');
};

$tests['typed errors'] = function () use ($client, $url): void {
    $e = throws(NotFoundException::class, fn () => $client->getSession('ses_doesnotexist'));
    check($e->status === 404 && $e->errorCode === 'NOT_FOUND', 'NOT_FOUND');
    $e = throws(ValidationException::class, fn () => $client->listPackages(limit: 100000));
    check($e->errors() !== [], 'field errors');
    throws(UnauthorizedException::class, fn () => (new Client($url, 'sak_not_a_real_key'))->getTenant());
};

$tests['webhooks: CRUD, deliveries, and verifying a request the server signed'] = function () use ($client): void {
    $hook = $client->createWebhook('https://lms.example.org/hooks', ['session.*'], 'LMS');
    check(str_starts_with((string) $hook->secret, 'whsec_'), 'secret at creation');
    check($client->getWebhook($hook->id)->secret === null, 'never again');
    check($client->updateWebhook($hook->id, ['description' => 'renamed'])->description === 'renamed', 'renamed');
    check(in_array($hook->id, array_map(static fn ($h) => $h->id, $client->listWebhooks()->data), true), 'listed');
    $delivery = $client->testWebhook($hook->id);
    check($delivery->eventType === 'ping', 'a ping');
    check($client->getDelivery($hook->id, $delivery->id)->id === $delivery->id, 'one delivery');
    check(in_array($delivery->id, array_map(static fn ($d) => $d->id, $client->listDeliveries($hook->id)->data), true), 'log');
    check($client->retryDelivery($hook->id, $delivery->id)->id === $delivery->id, 'retried');
    $client->deleteWebhook($hook->id);
    throws(NotFoundException::class, fn () => $client->getWebhook($hook->id));

    $vector = json_decode(env('WEBHOOK_VECTOR'), true);
    $headers = array_change_key_case($vector['headers'], CASE_UPPER); // getallheaders() may use any case
    $now = (int) $vector['headers']['webhook-timestamp'];
    $event = Webhooks::verify($vector['secret'], $headers, $vector['body'], now: $now);
    check($event->type === 'ping' && $event->id === $vector['headers']['webhook-id'], 'verified');
    throws(WebhookVerificationException::class, fn () => Webhooks::verify($vector['secret'], $headers, $vector['body'] . ' ', now: $now));
    throws(WebhookVerificationException::class, fn () => Webhooks::verify($vector['secret'], ['WEBHOOK-ID' => 'evt_other'] + $headers, $vector['body'], now: $now));
    throws(WebhookVerificationException::class, fn () => Webhooks::verify($vector['secret'], $headers, $vector['body'], now: $now + 3600));
};

$tests['xAPI credentials'] = function () use ($client): void {
    $credential = $client->createXapiCredential('PHP suite', 'read');
    check($credential->key === $credential->id && $credential->secret !== null, 'key and secret once');
    check(str_ends_with($credential->endpoint, '/xapi/'), 'the LRS endpoint');
    check($client->getXapiCredential($credential->id)->secret === null, 'never again');
    check(in_array($credential->id, array_map(static fn ($c) => $c->id, $client->listXapiCredentials()->data), true), 'listed');
    check($client->revokeXapiCredential($credential->id)->status === 'revoked', 'revoked');
};

$tests['a 429 is RateLimitedException, and retries sleep its Retry-After'] = function () use ($url): void {
    $limited = env('SCORM_APPLIANCE_LIMITED_KEY');
    $once = new Client($url, $limited, maxRetries: 0);
    $refused = null;
    for ($i = 0; $i < 20 && $refused === null; $i++) {
        try {
            $once->getUsage();
        } catch (RateLimitedException $e) {
            $refused = $e;
        }
    }
    check($refused !== null && $refused->retryAfter() > 0 && $refused->retryAfter() <= 60, 'refused with a wait');
    check($refused->headers['retry-after'] === (string) (int) $refused->retryAfter(), 'from Retry-After');
    $slept = [];
    $patient = new Client($url, $limited, maxRetries: 2, sleep: function (float $s) use (&$slept): void {
        $slept[] = $s;
    });
    throws(RateLimitedException::class, fn () => $patient->getUsage());
    check(count($slept) === 2 && min($slept) > 0 && max($slept) <= 60, 'slept Retry-After twice');
};

$passed = 0;
$failed = 0;
foreach ($tests as $name => $test) {
    $start = microtime(true);
    try {
        $test();
        $passed++;
        printf("ok   %s (%.0f ms)\n", $name, (microtime(true) - $start) * 1000);
    } catch (Throwable $e) {
        $failed++;
        printf("FAIL %s\n     %s: %s\n     at %s:%d\n", $name, get_class($e), $e->getMessage(), $e->getFile(), $e->getLine());
    }
}
echo "{$passed} passed, {$failed} failed\n";
exit($failed === 0 ? 0 : 1);
