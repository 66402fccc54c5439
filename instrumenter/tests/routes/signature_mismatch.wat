;; Route 7: the import's signature is not the one the policy declares for env.secret.
(module
  (import "env" "secret" (func $secret (param i64) (result i32)))
  (func (export "run") (result i32) (call $secret (i64.const 42))))
