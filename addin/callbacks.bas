' ---------------------------------------------------------------------------
' e-Defter Yedekleme: ribbon callbacks. Appended to xlwings' own module by
' edefter_helper.addin.build; every onAction in customUI*.xml names one Sub here.
' Keep this text ASCII: the VBA project stores source in code page 1252.
' ---------------------------------------------------------------------------

Sub EDefterRefresh(control As IRibbonControl)
    RunPython "import edefter_helper.excel as e; e.refresh()"
End Sub

Sub EDefterSend(control As IRibbonControl)
    RunPython "import edefter_helper.excel as e; e.send()"
End Sub

Sub EDefterQuery(control As IRibbonControl)
    RunPython "import edefter_helper.excel as e; e.query()"
End Sub

Sub EDefterBackup(control As IRibbonControl)
    RunPython "import edefter_helper.excel as e; e.backup()"
End Sub

Sub EDefterStatus(control As IRibbonControl)
    RunPython "import edefter_helper.excel as e; e.show_status()"
End Sub

Sub EDefterRadar(control As IRibbonControl)
    RunPython "import edefter_helper.excel as e; e.radar()"
End Sub

Sub EDefterRestore(control As IRibbonControl)
    RunPython "import edefter_helper.excel as e; e.restore()"
End Sub

Sub EDefterPassword(control As IRibbonControl)
    RunPython "import edefter_helper.excel as e; e.store_password()"
End Sub

Sub EDefterSetupCheck(control As IRibbonControl)
    RunPython "import edefter_helper.excel as e; e.setup_check()"
End Sub
