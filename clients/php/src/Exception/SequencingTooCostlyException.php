<?php

declare(strict_types=1);

namespace ScormAppliance\Exception;

/** 422 SEQUENCING_TOO_COSTLY. */
class SequencingTooCostlyException extends ApiException
{
}
