;; Routes 1, 2 and 4 at once: the import is re-exported, sits in an exported table, is
;; referenced from a global and is called directly.
(module
  (type $t (func (param i32) (result i32)))
  (import "env" "secret" (func $secret (type $t)))
  (export "secret_again" (func $secret))
  (table (export "tab") 2 funcref)
  (elem (i32.const 1) func $secret)
  (global (export "fref") funcref (ref.func $secret))
  (func (export "run") (result i32) (call $secret (i32.const 42)))
  (func (export "run_indirect") (result i32)
    (call_indirect (type $t) (i32.const 42) (i32.const 1))))
