;; Route 6: the same import declared twice (Go toolchains do this for fd_write).
(module
  (import "env" "secret" (func $first (param i32) (result i32)))
  (import "env" "secret" (func $second (param i32) (result i32)))
  (func (export "run_first") (result i32) (call $first (i32.const 42)))
  (func (export "run_second") (result i32) (call $second (i32.const 42))))
