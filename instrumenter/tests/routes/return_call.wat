;; Route 1: a tail call (`return_call`) of the monitored import.
(module
  (import "env" "secret" (func $secret (param i32) (result i32)))
  (func (export "run") (result i32)
    (return_call $secret (i32.const 42))))
