;; Route 2: an active element segment in index form puts the import in a table.
(module
  (type $t (func (param i32) (result i32)))
  (import "env" "secret" (func $secret (type $t)))
  (table 1 funcref)
  (elem (i32.const 0) func $secret)
  (func (export "run") (result i32)
    (call_indirect (type $t) (i32.const 42) (i32.const 0))))
