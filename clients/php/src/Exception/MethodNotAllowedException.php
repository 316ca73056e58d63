<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/** 405 METHOD_NOT_ALLOWED. */
class MethodNotAllowedException extends ApiException
{
}
