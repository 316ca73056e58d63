<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/** A webhook request whose signature or timestamp does not check out: answer it 400. */
class WebhookVerificationException extends ScormApplianceException
{
}
