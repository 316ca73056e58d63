<?php

declare(strict_types=1);

namespace ScormAppliance;

use ScormAppliance\Exception\WebhookVerificationException;
use ScormAppliance\Model\WebhookEvent;

/**
 * Verifying the appliance's webhook requests (Standard Webhooks, docs/webhooks.md).
 *
 * The server signs "<webhook-id>.<webhook-timestamp>.<raw body>" with HMAC-SHA256 under the secret's
 * base64-decoded bytes (after "whsec_") and sends "v1,<base64>". Verify over the raw body
 * (file_get_contents('php://input')), before decoding it, with hash_equals, and refuse stale
 * timestamps so that a captured request cannot be replayed.
 */
final class Webhooks
{
    public const TOLERANCE_SECONDS = 300;

    /** The webhook-signature value the server sends for this message. */
    public static function sign(string $secret, string $messageId, int $timestamp, string $body): string
    {
        $encoded = str_starts_with($secret, 'whsec_') ? substr($secret, 6) : $secret;
        $key = base64_decode($encoded, true);
        if ($key === false) {
            throw new WebhookVerificationException('the webhook secret is not a whsec_ base64 secret');
        }
        return 'v1,' . base64_encode(hash_hmac('sha256', "{$messageId}.{$timestamp}.{$body}", $key, true));
    }

    /**
     * Check a webhook request and return its event, or throw WebhookVerificationException.
     *
     * @param array<string, string|list<string>> $headers any case, e.g. getallheaders()
     */
    public static function verify(
        string $secret,
        array $headers,
        string $body,
        int $toleranceSeconds = self::TOLERANCE_SECONDS,
        ?int $now = null,
    ): WebhookEvent {
        $lower = [];
        foreach ($headers as $name => $value) {
            $lower[strtolower((string) $name)] = is_array($value) ? implode(' ', $value) : (string) $value;
        }
        $id = $lower['webhook-id'] ?? '';
        $timestamp = $lower['webhook-timestamp'] ?? '';
        $signatures = $lower['webhook-signature'] ?? '';
        if ($id === '' || $timestamp === '' || $signatures === '') {
            throw new WebhookVerificationException('missing webhook-id, webhook-timestamp or webhook-signature');
        }
        if (!ctype_digit($timestamp)) {
            throw new WebhookVerificationException('webhook-timestamp is not a number');
        }
        if (abs(($now ?? time()) - (int) $timestamp) > $toleranceSeconds) {
            throw new WebhookVerificationException('webhook-timestamp is outside the tolerance');
        }
        $expected = self::sign($secret, $id, (int) $timestamp, $body);
        $matched = false;
        // Several space-separated signatures may be sent (during a secret rotation).
        foreach (explode(' ', $signatures) as $candidate) {
            $matched = hash_equals($expected, $candidate) || $matched;
        }
        if (!$matched) {
            throw new WebhookVerificationException('no webhook-signature matches');
        }
        $event = json_decode($body, true);
        if (!is_array($event) || !isset($event['id'], $event['type'], $event['created_at'], $event['tenant_id'])) {
            throw new WebhookVerificationException('the signed body is not a webhook event');
        }
        return WebhookEvent::fromArray($event);
    }
}
