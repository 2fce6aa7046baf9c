# nspawn-cage: pure renderers and checks for the configuration files the
# NixOS module writes (nix/module.nix), in the syntax of nspawn-cage.conf(5).
#
# Only builtins: this file evaluates without nixpkgs, so tests/nix/run.sh
# runs it with nix-instantiate --eval and feeds the texts to the C parser.
#
#   let r = import ./nix/render.nix; in
#   r.admin settings                      # /etc/nspawn-cage/nspawn-cage.conf
#   r.cage { name; toplevel; project; user; settings; derivations ? [ ]; }
#                                         # /etc/nspawn-cage/cages/NAME.conf
#   r.checkSettings settings              # [ "message" ... ], empty when fine
#   r.checkCage { name; project; user; settings; admin; }   # [ "message" ... ]
#   r.keys                                # every key of nspawn-cage.conf(5), see below
#   r.presetPackages text                 # Packages= of a preset file
#
# `settings` has the sections and keys of nspawn-cage.conf(5) as attributes
# (settings.Limits.Memory = "4G"), as services.nspawn-cage.settings and
# services.nspawn-cage.cages.<name>.settings hold them (RFC 42): null values
# and empty lists are not written (the built-in default, or for a cage the
# administrator's value, applies).  Keys are written in the order of
# `keys`; a key `keys` does not know, or one the file may not hold, is a
# check message (the C parser would refuse the file at every start).
#
# The C parser is strict (nspawn-cage.conf(5), SYNTAX), so every line is
# checked as it is made, and a value that would not read back as written
# makes the renderer throw ("nspawn-cage: ..."):
#   * at most 190 characters a line: lists are written one element a line
#     (Packages=, Pass=, Bind=, Allow=, Directory=, Set=NAME=VALUE, ...),
#     which the parser accumulates; AllowUsers=, AllowNetwork= and AllowEgress= replace on
#     every line, so they are one line each;
#   * no newline, carriage return or other control character (tab aside);
#   * no ';' after white space (it would start a comment), no white space at
#     the start or end of a value (it would be stripped);
#   * a list element is one word: no blanks in it, not empty;
#   * booleans are yes/no.
let
  inherit (builtins) attrNames concatStringsSep concatLists elem filter foldl' fromJSON genList
    head isAttrs isBool isFloat isInt isList isString length match readFile replaceStrings
    split stringLength substring tail toJSON toString;

  fail = msg: throw "nspawn-cage: ${msg}";

  maxLine = 190;

  # ---- string predicates (builtins only) -------------------------------
  hexDigit = n: substring n 1 "0123456789abcdef";
  # Control characters the C parser refuses: 0x01-0x1f except tab, and DEL.
  # (Nix strings cannot hold NUL.)  fromJSON is the only way to spell them.
  controlChars = map (n: fromJSON "\"\\u00${hexDigit (n / 16)}${hexDigit (n - n / 16 * 16)}\"")
    (filter (n: n != 9) (genList (n: n + 1) 31) ++ [ 127 ]);
  hasInfix = infix: s: replaceStrings [ infix ] [ "" ] s != s;
  hasNewline = s: hasInfix "\n" s || hasInfix "\r" s;
  hasControl = s: replaceStrings controlChars (map (_: "") controlChars) s != s;
  words = s: filter (w: isString w && w != "") (split "[ \t]+" s);
  isBlank = c: c == " " || c == "\t";
  firstChar = s: substring 0 1 s;
  lastChar = s: substring (stringLength s - 1) 1 s;
  unique = foldl' (acc: x: if elem x acc then acc else acc ++ [ x ]) [ ];
  isDerivation = x: isAttrs x && (x.type or null) == "derivation";
  all = p: l: foldl' (a: x: a && p x) true l;
  any = p: l: foldl' (a: x: a || p x) false l;
  optional = c: x: if c then [ x ] else [ ];

  # A value for the line "Key=Value" of `file`, or a throw saying why the
  # C parser would not read it back as written.
  lineOf = file: section: key: value:
    let
      what = "${file}: [${section}] ${key}=${toJSON value}";
      l = "${key}=${value}";
    in
    if !isString value then fail "${what}: not a string"
    else if hasNewline value then fail "${what}: the value contains a newline; configuration values are single lines"
    else if hasControl value then fail "${what}: the value contains a control character"
    else if value == "" then fail "${what}: empty value"
    else if isBlank (firstChar value) || isBlank (lastChar value) then
      fail "${what}: white space at the start or end of a value would be stripped; remove it"
    else if match ".*[ \t];.*" value != null then
      fail "${what}: ';' after white space would start a comment and cut the value; remove the blank before ';'"
    else if stringLength l > maxLine then
      fail "${what}: the line would be ${toString (stringLength l)} characters long; nspawn-cage reads at most ${toString maxLine}"
    else l;

  # One word of a list (Packages=, Pass=, AllowUsers=, ...).
  wordOf = file: section: key: w:
    if !isString w then fail "${file}: [${section}] ${key}=: ${toJSON w} is not a string"
    else if w == "" || words w != [ w ] then
      fail "${file}: [${section}] ${key}=: ${toJSON w} is not one word (list elements may not be empty or contain blanks)"
    else w;

  # ---- values ------------------------------------------------------------
  boolText = b: if b then "yes" else "no";

  # CPUs as the C parser reads them: an integer, or at most two decimals.
  # Floats are written from their decimal form (toString 0.5 is "0.500000").
  cpusText = v:
    if isInt v then toString v
    else if isFloat v then
      let
        m = match "([0-9]+)(\\.([0-9]*))?" (toString v);
        frac = if m == null || elemAt2 m == null then "" else trimZeros (elemAt2 m);
      in
      if m == null || stringLength frac > 2 then null
      else if frac == "" then head m else "${head m}.${frac}"
    else if isString v then v
    else null;
  elemAt2 = l: builtins.elemAt l 2;
  trimZeros = s: let m = match "([0-9]*[1-9])0*" s; in if m == null then "" else head m;

  scalarText = file: section: key: v:
    if isBool v then boolText v
    else if key == "CPUs" || key == "MaxCPUs" then
      (let t = cpusText v; in if t == null then fail "${file}: [${section}] ${key}=${toJSON v}: expected a number of CPUs with at most two decimals, or \"infinity\"" else t)
    else if isInt v then toString v
    else if isString v then v
    else fail "${file}: [${section}] ${key}=${toJSON v}: expected a string, number or boolean";

  # ---- the keys of nspawn-cage.conf(5) ------------------------------------
  # Mirrors setting_table in nspawn-cage/config.c (tests/nix/run.sh compares
  # them).  shape: scalar (Key=Value), each (one line per element, the C
  # parser accumulates), joined (one line, replaces), sets (Set=NAME=VALUE).
  # files: where the module may write the key: "admin" (nspawn-cage.conf),
  # "cage" (a declared cage's file); [ ] for keys of the user's own file.
  both = [ "admin" "cage" ];
  keys = [
    { section = "Cage"; key = "Preset"; shape = "scalar"; files = both; }
    { section = "Cage"; key = "Command"; shape = "scalar"; files = both; }
    { section = "Cage"; key = "Packages"; shape = "each"; files = both; }
    { section = "Cage"; key = "Nixpkgs"; shape = "scalar"; files = [ "admin" ]; }
    { section = "Cage"; key = "Name"; shape = "scalar"; files = [ "admin" ]; }
    { section = "Cage"; key = "NixDaemon"; shape = "scalar"; files = both; }
    { section = "Cage"; key = "Containers"; shape = "scalar"; files = both; }
    { section = "Limits"; key = "CPUs"; shape = "scalar"; files = both; }
    { section = "Limits"; key = "Memory"; shape = "scalar"; files = both; }
    { section = "Limits"; key = "Swap"; shape = "scalar"; files = both; }
    { section = "Limits"; key = "Tasks"; shape = "scalar"; files = both; }
    { section = "Network"; key = "Mode"; shape = "scalar"; files = both; }
    { section = "Network"; key = "Allow"; shape = "each"; files = both; }
    { section = "Network"; key = "Publish"; shape = "each"; files = both; }
    { section = "Network"; key = "HostService"; shape = "each"; files = both; }
    { section = "Display"; key = "X11"; shape = "scalar"; files = both; }
    { section = "Display"; key = "Wayland"; shape = "scalar"; files = both; }
    { section = "Display"; key = "GPU"; shape = "scalar"; files = both; }
    { section = "Display"; key = "X11Trusted"; shape = "scalar"; files = both; }
    { section = "Files"; key = "Bind"; shape = "each"; files = both; }
    { section = "Files"; key = "BindReadOnly"; shape = "each"; files = both; }
    { section = "Files"; key = "ProtectGit"; shape = "scalar"; files = both; }
    { section = "State"; key = "Directory"; shape = "each"; files = both; }
    { section = "State"; key = "File"; shape = "each"; files = both; }
    { section = "State"; key = "Persist"; shape = "scalar"; files = both; }
    { section = "Environment"; key = "Pass"; shape = "each"; files = both; }
    { section = "Environment"; key = "Set"; shape = "sets"; files = both; }
    { section = "Environment"; key = "File"; shape = "scalar"; files = [ "cage" ]; }
    { section = "Forward"; key = "SSHAgent"; shape = "scalar"; files = [ ]; }
    { section = "Forward"; key = "GitConfig"; shape = "scalar"; files = [ ]; }
    { section = "Policy"; key = "AllowUsers"; shape = "joined"; files = [ "admin" ]; }
    { section = "Policy"; key = "MaxCPUs"; shape = "scalar"; files = [ "admin" ]; }
    { section = "Policy"; key = "MaxMemory"; shape = "scalar"; files = [ "admin" ]; }
    { section = "Policy"; key = "MaxSwap"; shape = "scalar"; files = [ "admin" ]; }
    { section = "Policy"; key = "MaxTasks"; shape = "scalar"; files = [ "admin" ]; }
    { section = "Policy"; key = "AllowNetwork"; shape = "joined"; files = [ "admin" ]; }
    { section = "Policy"; key = "AllowDisplay"; shape = "scalar"; files = [ "admin" ]; }
    { section = "Policy"; key = "AllowGPU"; shape = "scalar"; files = [ "admin" ]; }
    { section = "Policy"; key = "AllowX11Trusted"; shape = "scalar"; files = [ "admin" ]; }
    { section = "Policy"; key = "AllowBinds"; shape = "scalar"; files = [ "admin" ]; }
    { section = "Policy"; key = "AllowEgress"; shape = "joined"; files = [ "admin" ]; }
    { section = "Policy"; key = "AllowNixDaemon"; shape = "scalar"; files = [ "admin" ]; }
    { section = "Policy"; key = "AllowContainers"; shape = "scalar"; files = [ "admin" ]; }
    { section = "Policy"; key = "AllowPublish"; shape = "scalar"; files = [ "admin" ]; }
    { section = "Policy"; key = "AllowHostServices"; shape = "scalar"; files = [ "admin" ]; }
    # written by the module itself, from cages.<name>.{project,user} and the closure
    { section = "Cage"; key = "Project"; shape = "scalar"; files = [ ]; }
    { section = "Cage"; key = "User"; shape = "scalar"; files = [ ]; }
    { section = "Cage"; key = "Toplevel"; shape = "scalar"; files = [ ]; }
  ];
  sections = unique (map (k: k.section) keys);
  keyInfo = section: key: let m = filter (k: k.section == section && k.key == key) keys; in if m == [ ] then null else head m;

  # ---- lines -------------------------------------------------------------
  scalar = file: section: key: v:
    optional (v != null) (lineOf file section key (scalarText file section key v));
  # Accumulating list: one line per element.
  each = file: section: key: l:
    map (w: lineOf file section key (wordOf file section key (if isString w then w else scalarText file section key w))) l;
  # Replacing list (AllowUsers=, AllowNetwork=): one line holding all.
  joined = file: section: key: l:
    optional (l != [ ]) (lineOf file section key (concatStringsSep " " (map (wordOf file section key) l)));
  # Set=NAME=VALUE, one line per variable, in name order.
  sets = file: section: attrs:
    map (n:
      let v = attrs.${n}; in
      if v == null then [ ]
      else if !isString v then fail "${file}: [${section}] Set=${n}: the value must be a string"
      else if hasNewline v then fail "${file}: [${section}] Set=${n}=${toJSON v}: the value contains a newline; configuration values are single lines"
      else if hasControl v then fail "${file}: [${section}] Set=${n}=${toJSON v}: the value contains a control character"
      else lineOf file section "Set" "${wordOf file section "Set" n}=${v}")
      (attrNames attrs);

  # The lines of one known key; values may be null or lists (as the option
  # types allow them), a scalar given to a list key is one element.
  keyLines = file: k: v:
    if v == null || v == [ ] || v == { } then [ ]
    else if k.shape == "sets" then
      (if isAttrs v then filter isString (concatLists (map (x: if isList x then x else [ x ]) (sets file k.section v)))
       else fail "${file}: [${k.section}] Set: expected an attribute set NAME = \"VALUE\"")
    else if k.shape == "each" then each file k.section k.key (if isList v then v else [ v ])
    else if k.shape == "joined" then joined file k.section k.key (if isList v then v else [ v ])
    else if isList v then fail "${file}: [${k.section}] ${k.key}: expected one value, not a list"
    else scalar file k.section k.key v;

  sectionBlock = name: lines: if lines == [ ] then [ ] else [ "[${name}]" ] ++ lines;

  text = header: blocks:
    let ls = header ++ concatLists blocks; in
    # comments are lines too: the parser's limit applies to every line
    concatStringsSep "\n" (map (l:
      if hasNewline l || stringLength l > maxLine then fail "internal: line ${toJSON l} cannot be written" else l) ls) + "\n";

  comment = s:
    let c = "# ${replaceStrings [ "\n" "\r" ] [ " " " " ] s}";
    in if stringLength c > maxLine then substring 0 maxLine c else c;

  get = s: sec: key: def: let v = (s.${sec} or { }).${key} or def; in if v == null then def else v;

  # Every known key `fileKind` may hold, in table order; `first` gives lines
  # put at the top of a section (a declared cage's Project=, User=, ...).
  body = file: fileKind: settings: first:
    map (sec: sectionBlock sec (
      (first.${sec} or [ ])
      ++ concatLists (map (k: keyLines file k ((settings.${sec} or { }).${k.key} or null))
        (filter (k: k.section == sec && elem fileKind k.files) keys))))
      sections;

  # ---- the administrator's file -------------------------------------------
  admin = settings:
    text [
      "# /etc/nspawn-cage/nspawn-cage.conf, generated from services.nspawn-cage.settings."
      "# See nspawn-cage.conf(5). Do not edit: changes are lost at the next rebuild."
    ] (body "nspawn-cage.conf" "admin" settings { });

  # ---- a declared cage's file -----------------------------------------------
  # /etc/nspawn-cage/cages/NAME.conf: read by `nspawn-cage start NAME` as an
  # administrator layer after nspawn-cage.conf, with three keys valid only
  # there: Project=, User=, Toplevel= (the prebuilt closure: no Nix
  # evaluation at boot).  Package attribute names are written as Packages=
  # (for `nspawn-cage config`; the closure is Toplevel=), derivations as
  # comments.  Never a [Policy] section.
  cage = { name, toplevel, project, user, settings ? { }, derivations ? [ ] }:
    let f = "cages/${name}.conf"; in
    text [
      "# /etc/nspawn-cage/cages/${name}.conf, generated from services.nspawn-cage.cages.${name}."
      "# Read by 'nspawn-cage start ${name}' (nspawn-cage@${name}.service) after nspawn-cage.conf."
      "# Do not edit: changes are lost at the next rebuild."
    ] (body f "cage" settings {
      Cage = [
        (lineOf f "Cage" "Project" project)
        (lineOf f "Cage" "User" user)
        (lineOf f "Cage" "Toplevel" "${toplevel}")
      ] ++ map (d: comment "Package ${d.name} (a derivation; in Toplevel=)") derivations;
    });

  # ---- presets ----------------------------------------------------------------
  # The Packages= of a preset file (templates/presets/NAME.conf): accumulated,
  # an empty Packages= resets, as the C parser reads them.
  presetPackages = content:
    foldl' (acc: l:
      let m = match "Packages=(.*)" l; in
      if m == null then acc
      else let ws = words (head m); in if ws == [ ] then [ ] else acc ++ ws)
      [ ] (filter isString (split "\n" content));

  # ---- checks (mirroring the C parser, for build-time assertions) -------------
  # Each gives a list of messages; empty when the value is fine.
  infinity = "infinity";
  # Sizes in bytes; null for infinity; "invalid" when not a size.
  sizeBytes = s:
    if s == infinity then null
    else
      let
        m = if isString s then match "0*([0-9]+)([KMGT]?)" s else null;
        unit = if m == null then 1 else
          { "" = 1; K = 1024; M = 1048576; G = 1073741824; T = 1099511627776; }.${builtins.elemAt m 1};
        digits = if m == null then "" else head m;
        n = fromJSON digits;
      in
      if m == null || stringLength digits > 18 || n > 9223372036854775807 / unit then "invalid"
      else n * unit;
  # CPUs in hundredths; null for infinity; "invalid".
  cpusHundredths = v:
    if v == infinity then null
    else
      let
        t = cpusText v;
        m = if t == null then null else match "0*([0-9]+)(\\.([0-9]{1,2}))?" t;
        whole = fromJSON (head m);
        fracS = if elemAt2 m == null then "0" else elemAt2 m;
        frac = fromJSON (trimLeadingZeros fracS) * (if stringLength fracS == 1 then 10 else 1);
      in
      if m == null || stringLength (head m) > 5 || whole > 4096 || whole * 100 + frac == 0 then "invalid"
      else whole * 100 + frac;
  trimLeadingZeros = s: let m = match "0*([0-9]+)" s; in if m == null then "0" else head m;
  tasksCount = v:
    if v == infinity then null
    else if isInt v && v >= 1 && v <= 4194304 then v
    else "invalid";

  # value <= maximum, with null as infinity
  atMost = v: max: max == null || (v != null && v <= max);

  isUserName = s: isString s && match "[a-z_][a-z0-9_.-]{0,31}" s != null;
  isEnvName = s: isString s && match "[A-Za-z_][A-Za-z0-9_]{0,127}" s != null;
  isPackageName = s: isString s && stringLength s <= 128
    && match "[A-Za-z_][A-Za-z0-9_+-]*(\\.[A-Za-z_][A-Za-z0-9_+-]*)*" s != null;
  isPresetName = s: isString s && match "[a-z0-9-]{1,64}" s != null;
  isMachineName = s: isString s && stringLength s <= 64 && s != ".host"
    && match "[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?" s != null && !hasInfix ".." s;
  # Absolute, normalised, nothing systemd.nspawn(5) would need escaped
  # (path_is_safe_absolute() in config.c).
  isSafePath = p:
    isString p && firstChar p == "/" && stringLength p <= 4000 && !hasControl p
    && match ".*[:\\\"'].*" p == null
    && (p == "/" || all (c: c != "" && c != "." && c != ".." && !isBlank (firstChar c) && !isBlank (lastChar c))
      (tail (filter isString (split "/" p))));
  isBind = b: isString b &&
    (let parts = filter isString (split ":" b); in
     (length parts == 1 || length parts == 2) && all isSafePath parts && head parts != "/");
  isStorePath = p: isString p
    && match "/nix/store/[0123456789abcdfghijklmnpqrsvwxyz]{32}-[A-Za-z0-9+_?=-][A-Za-z0-9+._?=-]{0,210}" p != null;
  reservedEnv = [ "HOME" "USER" "LOGNAME" "SHELL" "PATH" "TERM" "DISPLAY" "WAYLAND_DISPLAY" "XAUTHORITY"
    "XDG_RUNTIME_DIR" "NOTIFY_SOCKET" "container" "container_uuid" ];
  isReservedEnv = n: elem n reservedEnv || match "(LISTEN_|SYSTEMD_).*" n != null;
  isNixpkgs = v: isString v && v != "" && stringLength v <= 256 && match ".*[ \t\"'\\\\$`;|&].*" v == null
    && (if firstChar v == "/" then isSafePath v
        else if firstChar v == "<" then lastChar v == ">"
        else true);
  modes = [ "off" "private" "host" ];

  # Keys the file may not hold: unknown to nspawn-cage.conf(5), or not for
  # this file (the C parser would refuse it at every start).
  checkKeys = where: fileKind: settings:
    concatLists (map (sec:
      let v = settings.${sec}; in
      if !(elem sec sections) then [ "${where}.${sec}: nspawn-cage.conf(5) has no section [${sec}] (known: ${concatStringsSep " " sections})" ]
      else if !isAttrs v then [ "${where}.${sec}: expected an attribute set of keys" ]
      else concatLists (map (key:
        let k = keyInfo sec key; val = v.${key}; in
        if val == null || val == [ ] || val == { } then [ ]
        else if k == null then [ "${where}.${sec}.${key}: [${sec}] has no key ${key} in nspawn-cage.conf(5) (known: ${concatStringsSep " " (map (x: x.key) (filter (x: x.section == sec && x.files != [ ]) keys))})" ]
        else if elem fileKind k.files then [ ]
        else if k.files == [ ] && sec == "Cage" then [ "${where}.${sec}.${key}: written by the module from cages.<name>.${if key == "Toplevel" then "packages (the closure)" else toLower key}; set that instead" ]
        else if k.files == [ ] then [ "${where}.${sec}.${key}: only the user's own configuration (~/.config/nspawn-cage/config) may set it (nspawn-cage.conf(5))" ]
        else if fileKind == "cage" && sec == "Policy" then [ "${where}.Policy.${key}: [Policy] bounds every cage; set it in services.nspawn-cage.settings.Policy" ]
        else if fileKind == "cage" then [ "${where}.${sec}.${key}: only the administrator's file may set it; set services.nspawn-cage.settings.${sec}.${key}" ]
        else [ "${where}.${sec}.${key}: only a declared cage's file may set it; set services.nspawn-cage.cages.<name>.settings.${sec}.${key}" ])
        (attrNames v)))
      (attrNames settings));
  toLower = s: replaceStrings [ "P" "U" ] [ "p" "u" ] s;

  # Checks of the keys every layer may set; `w` names the settings option.
  checkLimits = where: l:
    let
      cpus = l.CPUs or null; mem = l.Memory or null; swap = l.Swap or null; tasks = l.Tasks or null;
    in
    optional (cpus != null && cpusHundredths cpus == "invalid")
      "${where}.CPUs = ${toJSON cpus}: expected a number of CPUs from 0.01 to 4096 with at most two decimals, or \"infinity\""
    ++ optional (mem != null && sizeBytes mem == "invalid")
      "${where}.Memory = ${toJSON mem}: expected a size such as \"512M\" or \"4G\" (K, M, G, T are powers of 1024), or \"infinity\""
    ++ optional (mem != null && sizeBytes mem != "invalid" && sizeBytes mem != null && sizeBytes mem < 16777216)
      "${where}.Memory = ${toJSON mem}: a cage needs at least 16M"
    ++ optional (swap != null && sizeBytes swap == "invalid")
      "${where}.Swap = ${toJSON swap}: expected a size such as \"0\", \"512M\" or \"4G\", or \"infinity\""
    ++ optional (tasks != null && tasksCount tasks == "invalid")
      "${where}.Tasks = ${toJSON tasks}: expected a count from 1 to 4194304, or \"infinity\"";

  checkBinds = where: l:
    map (b: "${where} = ${toJSON b}: expected SOURCE[:DESTINATION] with absolute, normalised paths (no '.', '..', '//', trailing '/', quotes, backslashes or extra ':'), not the whole file system")
      (filter (b: !isBind b) l);

  checkEnvironment = where: pass: set:
    map (n: "${where}.Pass: ${toJSON n} is not an environment variable name (letters, digits, '_')")
      (filter (n: !isEnvName n) pass)
    ++ map (n: "${where}.Set: ${toJSON n} is not an environment variable name (letters, digits, '_')")
      (filter (n: !isEnvName n) (attrNames set))
    ++ map (n: "${where}.Set: ${n} is managed by nspawn-cage and cannot be set")
      (filter (n: isEnvName n && isReservedEnv n) (attrNames set));

  checkPackages = where: l:
    map (p: "${where}: ${toJSON p} is not a package attribute path (such as \"git\" or \"python3Packages.requests\")")
      (filter (p: isString p && !isPackageName p) l)
    ++ optional (length l > 512) "${where}: at most 512 packages";

  # [Network] Allow= and [Policy] AllowEgress=: HOST[:PORT] (port 443 if
  # none), HOST a DNS name, "*." and a name (every name below it), or an
  # IPv4 address; as validate.c parses them.
  egressParts = e:
    let m = match "((\\*\\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?)(:([1-9][0-9]{0,4}))?" e; in
    if !isString e || m == null then null
    else { host = head m; port = let p = builtins.elemAt m 4; in if p == null then 443 else fromJSON p; };
  isEgress = e: let p = egressParts e; in p != null && p.port <= 65535;
  # pattern names host: "*.a.b" every x.a.b and x.y.a.b, not a.b itself
  egressMatch = pattern: host:
    let suffix = substring 1 (stringLength pattern) pattern; lh = stringLength host; ls = stringLength suffix; in
    if substring 0 2 pattern != "*." then pattern == host
    else lh > ls && substring (lh - ls) ls host == suffix && substring (lh - ls - 1) 1 host != ".";
  # outer allows at least what inner does (a project's or cage's narrowing)
  egressCovers = outer: inner:
    let o = egressParts outer; i = egressParts inner; in
    o != null && i != null && o.port == i.port
    && (if substring 0 2 i.host == "*." && substring 0 2 o.host == "*."
        then egressMatch o.host (substring 2 (stringLength i.host) i.host) || o.host == i.host
        else egressMatch o.host i.host);
  checkEgress = where: l:
    map (e: "${where}: ${toJSON e} is not HOST[:PORT] (a DNS name, *. and a DNS name, or an IPv4 address; a port from 1 to 65535, 443 if none)")
      (filter (e: !isEgress e) l);
  isStatePath = p: isString p && p != "" && firstChar p != "/" && !hasControl p && match ".*[:\\\"' \t].*" p == null
    && all (c: c != "" && c != "." && c != "..") (filter isString (split "/" p));
  checkState = where: l:
    map (p: "${where}: ${toJSON p} is not a path relative to the home (no '/' first, no '.', '..', blanks or quotes)")
      (filter (p: !isStatePath p) l);

  # What the [Policy] of `settings` allows, for comparisons.
  policy = settings:
    let p = settings.Policy or { }; in {
      MaxCPUs = let v = p.MaxCPUs or null; in if v == null then null else cpusHundredths v;
      MaxMemory = let v = p.MaxMemory or null; in if v == null then null else sizeBytes v;
      MaxSwap = let v = p.MaxSwap or null; in if v == null then null else sizeBytes v;
      MaxTasks = let v = p.MaxTasks or null; in if v == null then null else tasksCount v;
      raw = {
        MaxCPUs = p.MaxCPUs or null; MaxMemory = p.MaxMemory or null; MaxSwap = p.MaxSwap or null;
        MaxTasks = p.MaxTasks or null; AllowNetwork = p.AllowNetwork or null;
      };
      allowNetwork = let v = p.AllowNetwork or null; in if v == null then [ "off" "private" ] else v;
      allowDisplay = let v = p.AllowDisplay or null; in v == null || v;
      allowGPU = let v = p.AllowGPU or null; in v == null || v;
      allowX11Trusted = let v = p.AllowX11Trusted or null; in v == null || v;
      allowBinds = let v = p.AllowBinds or null; in v == null || v;
      allowUsers = let v = p.AllowUsers or null; in if v == null then [ ] else v;
      allowEgress = let v = p.AllowEgress or null; in if v == null then [ ] else v;
      allowNixDaemon = (p.AllowNixDaemon or false) == true;
      allowContainers = (p.AllowContainers or false) == true;
      allowPublish = (p.AllowPublish or true) != false;
      allowHostServices = (p.AllowHostServices or true) != false;
    };

  # One layer's values against the policy; `where` names its settings.
  checkAgainstPolicy = where: pol: settings:
    let
      g = get settings;
      limits = settings.Limits or { };
      display = settings.Display or { };
      network = g "Network" "Mode" null;
      bindsList = g "Files" "Bind" [ ] ++ g "Files" "BindReadOnly" [ ];
      over = key: parse: maxKey: v:
        let x = if v == null then "invalid" else parse v; max = pol.${maxKey}; in
        optional (v != null && x != "invalid" && max != "invalid" && !atMost x max)
          "${where}.Limits.${key} = ${toJSON v} is above services.nspawn-cage.settings.Policy.${maxKey} = ${toJSON pol.raw.${maxKey}}; lower it or raise the maximum";
    in
    over "CPUs" cpusHundredths "MaxCPUs" (limits.CPUs or null)
    ++ over "Memory" sizeBytes "MaxMemory" (limits.Memory or null)
    ++ over "Swap" sizeBytes "MaxSwap" (limits.Swap or null)
    ++ over "Tasks" tasksCount "MaxTasks" (limits.Tasks or null)
    ++ optional (network != null && !elem network pol.allowNetwork)
      "${where}.Network.Mode = \"${network}\" is not allowed by services.nspawn-cage.settings.Policy.AllowNetwork (${if pol.raw.AllowNetwork == null then "default: " else ""}${concatStringsSep " " pol.allowNetwork}); allow it there or choose another mode"
    ++ optional (!pol.allowDisplay && ((display.X11 or null) == true || (display.Wayland or null) == true))
      "${where}: display forwarding (X11/Wayland) is on, but services.nspawn-cage.settings.Policy.AllowDisplay is false"
    ++ optional (!pol.allowGPU && (display.GPU or null) == true)
      "${where}: GPU is on, but services.nspawn-cage.settings.Policy.AllowGPU is false"
    ++ optional (!pol.allowX11Trusted && (display.X11Trusted or null) == true)
      "${where}: X11Trusted is on, but services.nspawn-cage.settings.Policy.AllowX11Trusted is false"
    ++ optional (!pol.allowBinds && bindsList != [ ])
      "${where}: binds are configured, but services.nspawn-cage.settings.Policy.AllowBinds is false"
    ++ map (e: "${where}.Network.Allow: ${toJSON e} is not in services.nspawn-cage.settings.Policy.AllowEgress; a cage may only narrow that list")
      (filter (e: pol.allowEgress != [ ] && !any (a: egressCovers a e) pol.allowEgress) (g "Network" "Allow" [ ]))
    ++ optional (!pol.allowNixDaemon && g "Cage" "NixDaemon" false == true)
      "${where}.Cage.NixDaemon is true, but services.nspawn-cage.settings.Policy.AllowNixDaemon is not"
    ++ optional (!pol.allowContainers && g "Cage" "Containers" "no" != "no")
      "${where}.Cage.Containers = ${toJSON (g "Cage" "Containers" "no")}, but services.nspawn-cage.settings.Policy.AllowContainers is not true"
    ++ optional (!pol.allowPublish && g "Network" "Publish" [ ] != [ ])
      "${where}.Network.Publish is set, but services.nspawn-cage.settings.Policy.AllowPublish is false"
    ++ optional (!pol.allowHostServices && g "Network" "HostService" [ ] != [ ])
      "${where}.Network.HostService is set, but services.nspawn-cage.settings.Policy.AllowHostServices is false";

  # The checks every layer's settings get.
  checkLayer = where: fileKind: settings:
    let g = get settings; in
    checkKeys where fileKind settings
    ++ optional (g "Cage" "Preset" null != null && !isPresetName (g "Cage" "Preset" null))
      "${where}.Cage.Preset = ${toJSON (g "Cage" "Preset" null)}: preset names use lower-case letters, digits and '-'"
    ++ optional (g "Cage" "Command" null != null && words (g "Cage" "Command" "") == [ ])
      "${where}.Cage.Command: empty command"
    ++ checkPackages "${where}.Cage.Packages" (g "Cage" "Packages" [ ])
    ++ checkLimits "${where}.Limits" (settings.Limits or { })
    ++ optional (g "Network" "Mode" null != null && !elem (g "Network" "Mode" null) modes)
      "${where}.Network.Mode = ${toJSON (g "Network" "Mode" null)}: expected off, private or host"
    ++ checkEgress "${where}.Network.Allow" (g "Network" "Allow" [ ])
    ++ checkBinds "${where}.Files.Bind" (g "Files" "Bind" [ ])
    ++ checkBinds "${where}.Files.BindReadOnly" (g "Files" "BindReadOnly" [ ])
    ++ checkState "${where}.State.Directory" (g "State" "Directory" [ ])
    ++ checkState "${where}.State.File" (g "State" "File" [ ])
    ++ checkEnvironment "${where}.Environment" (g "Environment" "Pass" [ ]) (g "Environment" "Set" { });

  checkSettings = settings:
    let
      w = "services.nspawn-cage.settings";
      g = get settings;
      pol = policy settings;
      p = settings.Policy or { };
      allowNet = g "Policy" "AllowNetwork" null;
      mode = g "Network" "Mode" null;
    in
    checkLayer w "admin" settings
    ++ optional (g "Cage" "Nixpkgs" null != null && !isNixpkgs (g "Cage" "Nixpkgs" null))
      "${w}.Cage.Nixpkgs = ${toJSON (g "Cage" "Nixpkgs" null)}: expected an absolute path, <channel> or a flake reference"
    ++ optional (g "Cage" "Name" null != null && !isMachineName (g "Cage" "Name" null))
      "${w}.Cage.Name = ${toJSON (g "Cage" "Name" null)}: not a valid machine name (1-64 letters, digits, '-', '_', '.')"
    ++ checkLimits "${w}.Policy" {
      CPUs = p.MaxCPUs or null; Memory = null; Swap = p.MaxSwap or null; Tasks = p.MaxTasks or null;
    }
    ++ optional ((p.MaxMemory or null) != null && sizeBytes p.MaxMemory == "invalid")
      "${w}.Policy.MaxMemory = ${toJSON p.MaxMemory}: expected a size such as \"16G\", or \"infinity\""
    ++ map (u: "${w}.Policy.AllowUsers: ${toJSON u} is not a user name (or \"*\")")
      (filter (u: u != "*" && !isUserName u) (g "Policy" "AllowUsers" [ ]))
    ++ map (m: "${w}.Policy.AllowNetwork: ${toJSON m} is not a network mode (off, private, host)")
      (filter (m: !elem m modes) (if allowNet == null then [ ] else allowNet))
    ++ optional (allowNet == [ ])
      "${w}.Policy.AllowNetwork = [ ] allows no network mode at all, not even \"off\"; leave it null or list the modes"
    ++ optional (allowNet != null && allowNet != [ ] && mode == null && !elem "off" allowNet)
      "${w}.Policy.AllowNetwork does not include the default Network.Mode \"off\"; add \"off\" or set ${w}.Network.Mode to an allowed mode"
    ++ checkEgress "${w}.Policy.AllowEgress" (g "Policy" "AllowEgress" [ ])
    ++ checkAgainstPolicy w pol settings;

  # A declared cage: `settings` its own (cages.<name>.settings, which the
  # typed options fill), `admin` the administrator's.
  checkCage = { name, project, user, settings ? { }, admin ? { } }:
    let
      w = "services.nspawn-cage.cages.${name}";
      pol = policy admin;
      ga = get admin;
      gc = get settings;
      mode = gc "Network" "Mode" (ga "Network" "Mode" "off");
      allow = ga "Network" "Allow" [ ] ++ gc "Network" "Allow" [ ];
    in
    optional (!isMachineName name)
      "${w}: '${name}' is not a valid cage name (1-64 letters, digits, '-', '_', '.'; not starting or ending with '.' or '-')"
    ++ optional (!isSafePath project || project == "/")
      "${w}.project = ${toJSON project}: expected an absolute, normalised directory path (no '.', '..', '//', trailing '/', ':', quotes)"
    ++ optional (!isUserName user)
      "${w}.user = ${toJSON user}: not a valid user name"
    ++ optional (user == "root")
      "${w}.user = \"root\": a cage's user must not be root"
    ++ optional (pol.allowUsers != [ ] && !elem "*" pol.allowUsers && !elem user pol.allowUsers)
      "${w}.user = ${toJSON user} is not in services.nspawn-cage.settings.Policy.AllowUsers (${concatStringsSep " " pol.allowUsers})"
    ++ checkLayer "${w}.settings" "cage" settings
    ++ optional (gc "Environment" "File" null != null && (!isSafePath (gc "Environment" "File" null) || match "/nix/store/.*" (gc "Environment" "File" null) != null))
      "${w}.settings.Environment.File = ${toJSON (gc "Environment" "File" null)}: expected an absolute path outside the Nix store (a secret, read as root when the cage starts)"
    ++ optional (allow != [ ] && mode != "private")
      "${w}: Network.Allow (an egress allowlist) needs Network.Mode = \"private\"; the cage's mode is \"${mode}\""
    ++ optional (pol.allowEgress != [ ] && mode == "host")
      "${w}: Network.Mode = \"host\" cannot be limited to services.nspawn-cage.settings.Policy.AllowEgress; choose \"private\""
    ++ checkAgainstPolicy "${w}.settings" pol settings;
in
{
  inherit admin cage presetPackages checkSettings checkCage keys;
  # exposed for the module and the tests
  inherit sizeBytes cpusHundredths cpusText isMachineName isSafePath isStorePath isUserName
    isPackageName isEnvName unique isDerivation maxLine;
}
