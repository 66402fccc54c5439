;; Route 1: a direct `call` of the monitored import.
(module
  (import "env" "secret" (func $secret (param i32) (result i32)))
  (func (export "run") (result i32)
    (call $secret (i32.const 42))))
