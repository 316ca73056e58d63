<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/** 422 CMI_VALIDATION_ERROR: errors() lists {element, value, scorm_error_code, message}; nothing was stored. */
class CmiValidationException extends ValidationException
{
}
