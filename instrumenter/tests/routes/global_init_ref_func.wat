;; Route 3: `ref.func` of the import in a global initialiser, called through the global.
(module
  (type $t (func (param i32) (result i32)))
  (import "env" "secret" (func $secret (type $t)))
  (global $g (ref null $t) (ref.func $secret))
  (func (export "run") (result i32)
    (call_ref $t (i32.const 42) (global.get $g))))
