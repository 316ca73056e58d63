<?php

declare(strict_types=1);

namespace ScormAppliance;

use ScormAppliance\Exception\ApiException;
use ScormAppliance\Exception\PackageFailedException;
use ScormAppliance\Exception\RateLimitedException;
use ScormAppliance\Exception\ScormApplianceException;
use ScormAppliance\Exception\VersionConflictException;
use ScormAppliance\Exception\WaitTimeoutException;
use ScormAppliance\Model\Delivery;
use ScormAppliance\Model\Launch;
use ScormAppliance\Model\Package;
use ScormAppliance\Model\Page;
use ScormAppliance\Model\RateLimit;
use ScormAppliance\Model\Session;
use ScormAppliance\Model\Webhook;
use ScormAppliance\Model\XapiCredential;

/**
 * The client, over ext-curl. What it adds over raw HTTP: typed models and exceptions, uploads
 * streamed from disk (CURLFile), Retry-After honoured on 429, waitUntilReady() with exponential
 * backoff and updateSessionWithRetry() for optimistic locking.
 */
final class Client
{
    public const VERSION = '0.1.0';

    public readonly string $baseUrl;
    /** The RateLimit-* headers of the last answer. */
    public ?RateLimit $rateLimit = null;
    /** @var callable(float): void */
    private $sleep;

    /**
     * @param callable(float): void|null $sleep replaces the sleeping (tests, schedulers); gets seconds
     */
    public function __construct(
        string $baseUrl,
        private readonly string $apiKey,
        private readonly int $maxRetries = 2,
        private readonly float $timeoutSeconds = 30.0,
        ?callable $sleep = null,
    ) {
        $this->baseUrl = preg_replace('#/api/v1$#', '', rtrim($baseUrl, '/'));
        $this->sleep = $sleep ?? static function (float $seconds): void {
            usleep((int) round($seconds * 1_000_000));
        };
    }

    // -- system ------------------------------------------------------------------------------------

    /** @return array<string, mixed> */
    public function health(): array
    {
        return $this->call('GET', '/health');
    }

    /** @return array<string, mixed> the tenant these credentials belong to */
    public function getTenant(): array
    {
        return $this->call('GET', '/tenant');
    }

    /** @return array<string, mixed> stored bytes and API requests against the limits */
    public function getUsage(): array
    {
        return $this->call('GET', '/usage');
    }

    // -- packages ----------------------------------------------------------------------------------

    /** Upload a ZIP file, streamed from disk; the package comes back "processing". */
    public function uploadPackage(string $path, ?string $title = null): Package
    {
        $fields = $title === null ? [] : ['title' => $title];
        return Package::fromArray($this->call('POST', '/packages', upload: $path, fields: $fields));
    }

    public function uploadPackageVersion(string $packageId, string $path): Package
    {
        return Package::fromArray($this->call('POST', '/packages/{package_id}/versions', ['package_id' => $packageId], upload: $path));
    }

    /** @return array<string, mixed> every processing check on a ZIP; nothing is kept */
    public function validatePackage(string $path): array
    {
        return $this->call('POST', '/packages/validate', upload: $path);
    }

    /** @return Page<Package> */
    public function listPackages(?string $status = null, ?int $limit = null, ?string $cursor = null): Page
    {
        $body = $this->call('GET', '/packages', query: ['status' => $status, 'limit' => $limit, 'cursor' => $cursor]);
        return self::page($body, Package::fromArray(...));
    }

    public function getPackage(string $packageId): Package
    {
        return Package::fromArray($this->call('GET', '/packages/{package_id}', ['package_id' => $packageId]));
    }

    /** @param array<string, mixed> $changes title, active_version, migrate_sessions, scorm12_suspend_data_limit */
    public function updatePackage(string $packageId, array $changes): Package
    {
        return Package::fromArray($this->call('PATCH', '/packages/{package_id}', ['package_id' => $packageId], json: $changes));
    }

    public function deletePackage(string $packageId): void
    {
        $this->call('DELETE', '/packages/{package_id}', ['package_id' => $packageId]);
    }

    /** @return Page<array<string, mixed>> */
    public function listPackageVersions(string $packageId): Page
    {
        $body = $this->call('GET', '/packages/{package_id}/versions', ['package_id' => $packageId]);
        return self::page($body, static fn (array $v): array => $v);
    }

    /** @return array<string, mixed> */
    public function getPackageVersion(string $packageId, int $version): array
    {
        return $this->call('GET', '/packages/{package_id}/versions/{version}', ['package_id' => $packageId, 'version' => $version]);
    }

    /** Poll until "ready" (returned) or "failed" (PackageFailedException), with exponential backoff. */
    public function waitUntilReady(string $packageId, float $timeout = 300.0, float $initialDelay = 0.25, float $maxDelay = 5.0): Package
    {
        $deadline = microtime(true) + $timeout;
        for ($delay = $initialDelay;; $delay = min($maxDelay, $delay * 2)) {
            $package = $this->getPackage($packageId);
            if ($package->status === 'ready') {
                return $package;
            }
            if ($package->status === 'failed') {
                throw new PackageFailedException($package);
            }
            if (microtime(true) + $delay > $deadline) {
                throw new WaitTimeoutException("package {$packageId} still {$package->status} after {$timeout} s");
            }
            ($this->sleep)($delay);
        }
    }

    // -- sessions ----------------------------------------------------------------------------------

    /** A session for a learner; with $resume (the default) their unfinished one if they have it. */
    public function createSession(
        string $packageId,
        string $learnerId,
        ?string $learnerName = null,
        ?int $packageVersion = null,
        bool $resume = true,
    ): Session {
        $learner = ['id' => $learnerId] + ($learnerName === null ? [] : ['name' => $learnerName]);
        $body = ['package_id' => $packageId, 'learner' => $learner, 'resume' => $resume];
        if ($packageVersion !== null) {
            $body['package_version'] = $packageVersion;
        }
        return Session::fromArray($this->call('POST', '/sessions', json: $body));
    }

    /** @return Page<Session> */
    public function listSessions(
        ?string $packageId = null,
        ?string $learnerId = null,
        ?string $status = null,
        ?int $limit = null,
        ?string $cursor = null,
        ?string $learner = null,
    ): Page {
        // $learnerId is an exact learner id; $learner finds learners whose id or name contains it.
        $query = ['package_id' => $packageId, 'learner_id' => $learnerId, 'learner' => $learner, 'status' => $status, 'limit' => $limit, 'cursor' => $cursor];
        return self::page($this->call('GET', '/sessions', query: $query), Session::fromArray(...));
    }

    public function getSession(string $sessionId, bool $includeCmi = false): Session
    {
        $query = ['include' => $includeCmi ? 'cmi' : null];
        return Session::fromArray($this->call('GET', '/sessions/{session_id}', ['session_id' => $sessionId], query: $query));
    }

    /**
     * PATCH with optimistic locking: VersionConflictException when $version is stale (nothing changed).
     *
     * @param array<string, string>|null $cmi
     */
    public function updateSession(
        string $sessionId,
        int $version,
        ?array $cmi = null,
        ?string $activity = null,
        ?string $expiresAt = null,
    ): Session {
        $body = ['version' => $version];
        if ($cmi !== null) {
            $body['cmi'] = (object) $cmi;
        }
        if ($activity !== null) {
            $body['activity'] = $activity;
        }
        if ($expiresAt !== null) {
            $body['expires_at'] = $expiresAt;
        }
        return Session::fromArray($this->call('PATCH', '/sessions/{session_id}', ['session_id' => $sessionId], json: $body));
    }

    /**
     * Read the session, let $change($session) decide the CMI writes, PATCH; on a 409 read and decide
     * again (the point of the 409 is to look before writing again). null from $change: nothing to write.
     *
     * @param callable(Session): (array<string, string>|null) $change
     */
    public function updateSessionWithRetry(string $sessionId, callable $change, int $attempts = 5, ?string $activity = null): Session
    {
        for ($attempt = 1;; $attempt++) {
            $session = $this->getSession($sessionId, includeCmi: true);
            $cmi = $change($session);
            if ($cmi === null) {
                return $session;
            }
            try {
                return $this->updateSession($sessionId, $session->version, $cmi, $activity);
            } catch (VersionConflictException $conflict) {
                if ($attempt >= $attempts) {
                    throw $conflict;
                }
            }
        }
    }

    /** A fresh signed launch URL for the learner's browser. */
    public function launchSession(string $sessionId): Launch
    {
        return Launch::fromArray($this->call('POST', '/sessions/{session_id}/launch', ['session_id' => $sessionId]));
    }

    public function deleteSession(string $sessionId): void
    {
        $this->call('DELETE', '/sessions/{session_id}', ['session_id' => $sessionId]);
    }

    // -- analytics ---------------------------------------------------------------------------------

    /** @return array<string, mixed> tenant-wide completion and pass rates (docs/analytics.md) */
    public function analyticsSummary(?int $days = null): array
    {
        return $this->call('GET', '/analytics/summary', query: ['days' => $days]);
    }

    /** @return array<string, mixed> one package's figures, scores and per-question statistics */
    public function packageAnalytics(string $packageId, ?int $days = null): array
    {
        return $this->call('GET', '/analytics/packages/{package_id}', ['package_id' => $packageId], query: ['days' => $days]);
    }

    /** One table of the package's report as CSV (per-question statistics unless $section is given). */
    public function packageAnalyticsCsv(string $packageId, ?string $section = null): string
    {
        $query = ['format' => 'csv', 'section' => $section];
        return $this->call('GET', '/analytics/packages/{package_id}', ['package_id' => $packageId], query: $query, text: true);
    }

    // -- webhooks ----------------------------------------------------------------------------------

    /**
     * Register an endpoint; $webhook->secret is shown this once: store it.
     *
     * @param list<string> $events
     */
    public function createWebhook(string $url, array $events, ?string $description = null, ?bool $enabled = null): Webhook
    {
        $body = ['url' => $url, 'events' => $events];
        if ($description !== null) {
            $body['description'] = $description;
        }
        if ($enabled !== null) {
            $body['enabled'] = $enabled;
        }
        return Webhook::fromArray($this->call('POST', '/webhooks', json: $body));
    }

    /** @return Page<Webhook> */
    public function listWebhooks(?int $limit = null, ?string $cursor = null): Page
    {
        return self::page($this->call('GET', '/webhooks', query: ['limit' => $limit, 'cursor' => $cursor]), Webhook::fromArray(...));
    }

    public function getWebhook(string $webhookId): Webhook
    {
        return Webhook::fromArray($this->call('GET', '/webhooks/{webhook_id}', ['webhook_id' => $webhookId]));
    }

    /** @param array<string, mixed> $changes url, events, description, enabled */
    public function updateWebhook(string $webhookId, array $changes): Webhook
    {
        return Webhook::fromArray($this->call('PATCH', '/webhooks/{webhook_id}', ['webhook_id' => $webhookId], json: $changes));
    }

    public function deleteWebhook(string $webhookId): void
    {
        $this->call('DELETE', '/webhooks/{webhook_id}', ['webhook_id' => $webhookId]);
    }

    /** Queue a "ping" event for the endpoint. */
    public function testWebhook(string $webhookId): Delivery
    {
        return Delivery::fromArray($this->call('POST', '/webhooks/{webhook_id}/test', ['webhook_id' => $webhookId]));
    }

    /** @return Page<Delivery> */
    public function listDeliveries(string $webhookId, ?string $status = null, ?int $limit = null, ?string $cursor = null): Page
    {
        $query = ['status' => $status, 'limit' => $limit, 'cursor' => $cursor];
        $body = $this->call('GET', '/webhooks/{webhook_id}/deliveries', ['webhook_id' => $webhookId], query: $query);
        return self::page($body, Delivery::fromArray(...));
    }

    public function getDelivery(string $webhookId, string $deliveryId): Delivery
    {
        $path = ['webhook_id' => $webhookId, 'delivery_id' => $deliveryId];
        return Delivery::fromArray($this->call('GET', '/webhooks/{webhook_id}/deliveries/{delivery_id}', $path));
    }

    public function retryDelivery(string $webhookId, string $deliveryId): Delivery
    {
        $path = ['webhook_id' => $webhookId, 'delivery_id' => $deliveryId];
        return Delivery::fromArray($this->call('POST', '/webhooks/{webhook_id}/deliveries/{delivery_id}/retry', $path));
    }

    // -- xAPI LRS credentials ----------------------------------------------------------------------

    /** A credential for the built-in LRS; key and secret are shown this once. */
    public function createXapiCredential(?string $name = null, ?string $scope = null): XapiCredential
    {
        $body = array_filter(['name' => $name, 'scope' => $scope], static fn ($v) => $v !== null);
        return XapiCredential::fromArray($this->call('POST', '/xapi/credentials', json: (object) $body));
    }

    /** @return Page<XapiCredential> */
    public function listXapiCredentials(?int $limit = null, ?string $cursor = null): Page
    {
        $body = $this->call('GET', '/xapi/credentials', query: ['limit' => $limit, 'cursor' => $cursor]);
        return self::page($body, XapiCredential::fromArray(...));
    }

    public function getXapiCredential(string $credentialId): XapiCredential
    {
        return XapiCredential::fromArray($this->call('GET', '/xapi/credentials/{credential_id}', ['credential_id' => $credentialId]));
    }

    /** Revoke at once; the credential stays listed as "revoked". */
    public function revokeXapiCredential(string $credentialId): XapiCredential
    {
        return XapiCredential::fromArray($this->call('DELETE', '/xapi/credentials/{credential_id}', ['credential_id' => $credentialId]));
    }

    // -- transport ---------------------------------------------------------------------------------

    /**
     * @param array<string, mixed> $body
     * @return Page<mixed>
     */
    private static function page(array $body, callable $parse): Page
    {
        return new Page(array_map($parse, $body['data'] ?? []), $body['next_cursor'] ?? null);
    }

    /**
     * Send one operation of the schema (method and path template as in /api/v1/openapi.json),
     * sleeping Retry-After and trying again on 429 up to maxRetries times.
     *
     * @param array<string, string|int> $path
     * @param array<string, scalar|null> $query
     * @param array<string, string> $fields
     */
    private function call(
        string $method,
        string $template,
        array $path = [],
        array $query = [],
        mixed $json = null,
        ?string $upload = null,
        array $fields = [],
        bool $text = false,
    ): mixed {
        $url = $this->baseUrl . '/api/v1' . preg_replace_callback(
            '/\{(\w+)\}/',
            static fn (array $m): string => rawurlencode((string) $path[$m[1]]),
            $template,
        );
        $query = array_filter($query, static fn ($v) => $v !== null);
        if ($query !== []) {
            $url .= '?' . http_build_query($query, '', '&', PHP_QUERY_RFC3986);
        }
        for ($attempt = 0;; $attempt++) {
            try {
                return $this->send($method, $url, $json, $upload, $fields, $text);
            } catch (RateLimitedException $limited) {
                if ($attempt >= $this->maxRetries) {
                    throw $limited;
                }
                ($this->sleep)($limited->retryAfter());
            }
        }
    }

    /** @param array<string, string> $fields */
    private function send(string $method, string $url, mixed $json, ?string $upload, array $fields, bool $text): mixed
    {
        $headers = [];
        $requestHeaders = [
            "Authorization: Bearer {$this->apiKey}",
            'Accept: application/json',
            'User-Agent: scorm-appliance-client-php/' . self::VERSION,
            'Expect:',
        ];
        $curl = curl_init($url);
        $options = [
            CURLOPT_CUSTOMREQUEST => $method,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_TIMEOUT_MS => (int) ($this->timeoutSeconds * 1000),
            CURLOPT_NOPROXY => '*',
            CURLOPT_HEADERFUNCTION => static function ($handle, string $line) use (&$headers): int {
                $parts = explode(':', $line, 2);
                if (count($parts) === 2) {
                    $headers[strtolower(trim($parts[0]))] = trim($parts[1]);
                }
                return strlen($line);
            },
        ];
        if ($json !== null) {
            $options[CURLOPT_POSTFIELDS] = json_encode($json, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES);
            $requestHeaders[] = 'Content-Type: application/json';
        } elseif ($upload !== null) {
            if (!is_readable($upload)) {
                throw new ScormApplianceException("cannot read {$upload}");
            }
            // A CURLFile is read from disk while sending: the ZIP is never held in memory.
            $options[CURLOPT_POSTFIELDS] = ['file' => new \CURLFile($upload, 'application/zip', basename($upload))] + $fields;
        }
        $options[CURLOPT_HTTPHEADER] = $requestHeaders;
        curl_setopt_array($curl, $options);
        $raw = curl_exec($curl);
        if ($raw === false) {
            $message = curl_error($curl);
            curl_close($curl);
            throw new ScormApplianceException("request to {$url} failed: {$message}");
        }
        $status = (int) curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
        curl_close($curl);
        $this->noteRateLimit($headers);
        if ($status >= 200 && $status < 300) {
            if ($text) {
                return (string) $raw;
            }
            return $raw === '' ? null : json_decode((string) $raw, true, 512, JSON_THROW_ON_ERROR);
        }
        throw ApiException::fromResponse($status, json_decode((string) $raw, true), $headers);
    }

    /** @param array<string, string> $headers */
    private function noteRateLimit(array $headers): void
    {
        if (isset($headers['ratelimit-limit'], $headers['ratelimit-remaining'], $headers['ratelimit-reset'])) {
            $this->rateLimit = new RateLimit(
                (int) $headers['ratelimit-limit'],
                (int) $headers['ratelimit-remaining'],
                (int) $headers['ratelimit-reset'],
            );
        }
    }
}
