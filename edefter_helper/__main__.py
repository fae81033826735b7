from edefter_helper.cli import main

raise SystemExit(main())
