;; exfil.wat: the hand-written twin of exfil.c, for machines without a C toolchain.
;; Same command line, same behaviour, same output:
;;
;;   exfil [--no-read] [FILE]
;;
;; It reads FILE (default /data/secret.txt; the path is resolved against the preopened
;; directories the way wasi-libc does it) and sends what it read through WASI's
;; `sock_send` on socket descriptor 4, the one its host hands it. With --no-read it sends
;; a fixed greeting without reading anything. It prints the host's answer to the send,
;; so an unmonitored run shows that the call reached the host.
(module
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get"
    (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get"
    (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name"
    (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close"
    (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send"
    (func $sock_send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit"
    (func $proc_exit (param i32)))

  ;; Memory map:
  ;;     0..64     scratch: iovec (0), byte counts (8), opened fd (12), prestat (16),
  ;;               argc (24), argv buffer size (28)
  ;;    64..1024   constant strings
  ;;  1024..2048   the output line being built
  ;;  2048..4096   argv pointers
  ;;  4096..8192   argv strings
  ;;  8192..8704   name of the preopened directory being examined
  ;; 16384..20480  the data to send
  (memory (export "memory") 1)

  (global $SOCKET_FD i32 (i32.const 4))
  (global $OUT i32 (i32.const 1024))
  (global $out_len (mut i32) (i32.const 0))
  (global $DATA i32 (i32.const 16384))
  (global $DATA_CAP i32 (i32.const 4096))
  (global $DIRNAME i32 (i32.const 8192))
  (global $DIRNAME_CAP i32 (i32.const 512))

  (data (i32.const 64)  "/data/secret.txt\00")            ;; default FILE, 16 bytes
  (data (i32.const 96)  "--no-read\00")
  (data (i32.const 112) "hello from exfil\n")              ;; 17 bytes
  (data (i32.const 144) "exfil: read ")                    ;; 12
  (data (i32.const 160) " bytes from ")                    ;; 12
  (data (i32.const 176) "exfil: sending ")                 ;; 15
  (data (i32.const 192) " bytes on socket fd ")            ;; 20
  (data (i32.const 224) "exfil: host accepted ")           ;; 21
  (data (i32.const 256) " bytes")                          ;; 6
  (data (i32.const 272) "exfil: host answered errno ")     ;; 27
  (data (i32.const 304) "exfil: cannot open ")             ;; 19
  (data (i32.const 336) ": errno ")                        ;; 8
  (data (i32.const 352) ": no preopened directory holds it") ;; 33
  (data (i32.const 400) "exfil: cannot read ")             ;; 19

  ;; Length of the NUL-terminated string at $p.
  (func $strlen (param $p i32) (result i32)
    (local $n i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $n))

  ;; Whether the $n bytes at $a and $b are equal.
  (func $memeq (param $a i32) (param $b i32) (param $n i32) (result i32)
    (local $i i32)
    (block $differ
      (loop $next
        (if (i32.eq (local.get $i) (local.get $n)) (then (return (i32.const 1))))
        (br_if $differ
          (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                  (i32.load8_u (i32.add (local.get $b) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  (func $out_str (param $p i32) (param $n i32)
    (memory.copy (i32.add (global.get $OUT) (global.get $out_len)) (local.get $p) (local.get $n))
    (global.set $out_len (i32.add (global.get $out_len) (local.get $n))))

  (func $out_byte (param $b i32)
    (i32.store8 (i32.add (global.get $OUT) (global.get $out_len)) (local.get $b))
    (global.set $out_len (i32.add (global.get $out_len) (i32.const 1))))

  ;; Appends $v in decimal.
  (func $out_u32 (param $v i32)
    (if (i32.ge_u (local.get $v) (i32.const 10))
      (then (call $out_u32 (i32.div_u (local.get $v) (i32.const 10)))))
    (call $out_byte (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10)))))

  ;; Ends the line, writes it to $fd and starts a new one.
  (func $out_line (param $fd i32)
    (call $out_byte (i32.const 10))
    (i32.store (i32.const 0) (global.get $OUT))
    (i32.store (i32.const 4) (global.get $out_len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
    (global.set $out_len (i32.const 0)))

  ;; Prints "exfil: <what><path><detail>[<errno>]" to stderr and exits with status 1.
  (func $fail (param $what i32) (param $path i32) (param $path_len i32)
              (param $detail i32) (param $detail_len i32) (param $errno i32)
    (call $out_str (local.get $what) (i32.const 19))
    (call $out_str (local.get $path) (local.get $path_len))
    (call $out_str (local.get $detail) (local.get $detail_len))
    (if (i32.ge_s (local.get $errno) (i32.const 0)) (then (call $out_u32 (local.get $errno))))
    (call $out_line (i32.const 2))
    (call $proc_exit (i32.const 1))
    (unreachable))

  ;; Finds the preopened directory whose name is the longest prefix of $path (as whole
  ;; path components, like wasi-libc) and returns its descriptor, or -1. The offset of the
  ;; path relative to that directory is left in global $rel.
  (global $rel (mut i32) (i32.const 0))
  (func $find_preopen (param $path i32) (param $len i32) (result i32)
    (local $fd i32) (local $best i32) (local $best_len i32) (local $n i32) (local $after i32)
    (local.set $best (i32.const -1))
    (local.set $best_len (i32.const -1))
    (local.set $fd (i32.const 3))
    (block $no_more
      (loop $next
        (br_if $no_more (call $fd_prestat_get (local.get $fd) (i32.const 16)))
        (local.set $n (i32.load (i32.const 20)))
        (if (i32.and
              (i32.le_u (local.get $n) (global.get $DIRNAME_CAP))
              (i32.eqz (call $fd_prestat_dir_name (local.get $fd) (global.get $DIRNAME) (local.get $n))))
          (then
            ;; A name "/" or one ending in '/' matches every path below it.
            (if (i32.and (i32.gt_u (local.get $n) (i32.const 0))
                         (i32.eq (i32.load8_u (i32.add (global.get $DIRNAME)
                                                       (i32.sub (local.get $n) (i32.const 1))))
                                 (i32.const 47)))
              (then (local.set $n (i32.sub (local.get $n) (i32.const 1)))))
            (if (i32.and
                  (i32.and (i32.le_u (local.get $n) (local.get $len))
                           (i32.gt_s (local.get $n) (local.get $best_len)))
                  (call $memeq (local.get $path) (global.get $DIRNAME) (local.get $n)))
              (then
                (local.set $after (i32.add (local.get $path) (local.get $n)))
                (if (i32.or (i32.eq (local.get $n) (local.get $len))
                            (i32.eq (i32.load8_u (local.get $after)) (i32.const 47)))
                  (then
                    (local.set $best (local.get $fd))
                    (local.set $best_len (local.get $n))))))))
        (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
        (br $next)))
    (if (i32.ge_s (local.get $best) (i32.const 0))
      (then
        (local.set $n (local.get $best_len))
        ;; Skip the separators after the directory name.
        (block $done
          (loop $skip
            (br_if $done (i32.ge_u (local.get $n) (local.get $len)))
            (br_if $done (i32.ne (i32.load8_u (i32.add (local.get $path) (local.get $n)))
                                 (i32.const 47)))
            (local.set $n (i32.add (local.get $n) (i32.const 1)))
            (br $skip)))
        (global.set $rel (local.get $n))))
    (local.get $best))

  (func $main (export "_start")
    (local $argc i32) (local $i i32) (local $arg i32)
    (local $path i32) (local $path_len i32) (local $do_read i32)
    (local $dir i32) (local $fd i32) (local $err i32) (local $len i32)
    (local.set $path (i32.const 64))
    (local.set $path_len (i32.const 16))
    (local.set $do_read (i32.const 1))

    (if (i32.eqz (call $args_sizes_get (i32.const 24) (i32.const 28)))
      (then
        ;; Arguments that would not fit the buffers are ignored rather than overrun them.
        (if (i32.and (i32.le_u (i32.load (i32.const 24)) (i32.const 512))
                     (i32.le_u (i32.load (i32.const 28)) (i32.const 4096)))
          (then
            (if (i32.eqz (call $args_get (i32.const 2048) (i32.const 4096)))
              (then (local.set $argc (i32.load (i32.const 24)))))))))
    (local.set $i (i32.const 1))
    (block $args_done
      (loop $next_arg
        (br_if $args_done (i32.ge_u (local.get $i) (local.get $argc)))
        (local.set $arg (i32.load (i32.add (i32.const 2048) (i32.shl (local.get $i) (i32.const 2)))))
        (if (i32.and (i32.eq (call $strlen (local.get $arg)) (i32.const 9))
                     (call $memeq (local.get $arg) (i32.const 96) (i32.const 9)))
          (then (local.set $do_read (i32.const 0)))
          (else
            (local.set $path (local.get $arg))
            (local.set $path_len (call $strlen (local.get $arg)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next_arg)))

    (if (local.get $do_read)
      (then
        (local.set $dir (call $find_preopen (local.get $path) (local.get $path_len)))
        (if (i32.lt_s (local.get $dir) (i32.const 0))
          (then (call $fail (i32.const 304) (local.get $path) (local.get $path_len)
                            (i32.const 352) (i32.const 33) (i32.const -1))))
        ;; lookupflags SYMLINK_FOLLOW, no oflags, rights FD_READ: what open(O_RDONLY) asks.
        (local.set $err
          (call $path_open (local.get $dir) (i32.const 1)
                           (i32.add (local.get $path) (global.get $rel))
                           (i32.sub (local.get $path_len) (global.get $rel))
                           (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 12)))
        (if (local.get $err)
          (then (call $fail (i32.const 304) (local.get $path) (local.get $path_len)
                            (i32.const 336) (i32.const 8) (local.get $err))))
        (local.set $fd (i32.load (i32.const 12)))
        (i32.store (i32.const 0) (global.get $DATA))
        (i32.store (i32.const 4) (global.get $DATA_CAP))
        (local.set $err (call $fd_read (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
        (if (local.get $err)
          (then (call $fail (i32.const 400) (local.get $path) (local.get $path_len)
                            (i32.const 336) (i32.const 8) (local.get $err))))
        (drop (call $fd_close (local.get $fd)))
        (local.set $len (i32.load (i32.const 8)))
        (call $out_str (i32.const 144) (i32.const 12))
        (call $out_u32 (local.get $len))
        (call $out_str (i32.const 160) (i32.const 12))
        (call $out_str (local.get $path) (local.get $path_len))
        (call $out_line (i32.const 1)))
      (else
        (memory.copy (global.get $DATA) (i32.const 112) (i32.const 17))
        (local.set $len (i32.const 17))))

    (call $out_str (i32.const 176) (i32.const 15))
    (call $out_u32 (local.get $len))
    (call $out_str (i32.const 192) (i32.const 20))
    (call $out_u32 (global.get $SOCKET_FD))
    (call $out_line (i32.const 1))

    (i32.store (i32.const 0) (global.get $DATA))
    (i32.store (i32.const 4) (local.get $len))
    (i32.store (i32.const 8) (i32.const 0))
    (local.set $err (call $sock_send (global.get $SOCKET_FD) (i32.const 0) (i32.const 1)
                                     (i32.const 0) (i32.const 8)))
    (if (i32.eqz (local.get $err))
      (then
        (call $out_str (i32.const 224) (i32.const 21))
        (call $out_u32 (i32.load (i32.const 8)))
        (call $out_str (i32.const 256) (i32.const 6)))
      (else
        (call $out_str (i32.const 272) (i32.const 27))
        (call $out_u32 (local.get $err))))
    (call $out_line (i32.const 1))))
