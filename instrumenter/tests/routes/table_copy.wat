;; Route 2: `table.copy` from a second table that holds the import into the called one.
(module
  (type $t (func (param i32) (result i32)))
  (import "env" "secret" (func $secret (type $t)))
  (table $called 2 funcref)
  (table $stash 2 funcref)
  (elem (table $stash) (i32.const 1) func $secret)
  (func (export "run") (result i32)
    (table.copy $called $stash (i32.const 0) (i32.const 1) (i32.const 1))
    (call_indirect $called (type $t) (i32.const 42) (i32.const 0))))
