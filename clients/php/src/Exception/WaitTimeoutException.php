<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/** waitUntilReady() gave up while the package was still processing. */
class WaitTimeoutException extends ScormApplianceException
{
}
