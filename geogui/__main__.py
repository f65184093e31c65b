from geogui.app import main

raise SystemExit(main())
