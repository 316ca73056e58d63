<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/** Base of everything this client throws on purpose. */
class ScormApplianceException extends \RuntimeException
{
}
