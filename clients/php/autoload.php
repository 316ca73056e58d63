<?php

declare(strict_types=1);

// The PSR-4 mapping of composer.json ("ScormAppliance\\" => src/), for use without Composer
// (the tests, or a project that vendors these files). With Composer, require vendor/autoload.php.
spl_autoload_register(static function (string $class): void {
    $prefix = 'ScormAppliance\\';
    if (strncmp($class, $prefix, strlen($prefix)) !== 0) {
        return;
    }
    $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
