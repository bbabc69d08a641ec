"""One docked panel for all the plots (dendrogram, k scan, comparison heat map), one tab each."""

from __future__ import annotations

from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QDockWidget, QMainWindow, QTabWidget


class PlotTabs(QTabWidget):
    """The plots of the main widget as tabs of one dock widget (:data:`NAME`).

    :meth:`show_plot` adds a plot as a tab (or renames its tab), makes it the
    current tab, and docks the panel again if the user closed or hid it.
    """

    #: Title of the dock widget in the viewer's window (and its Window menu).
    NAME = "Cluster plots"

    def __init__(self, viewer, parent=None):
        super().__init__(parent)
        self._viewer = viewer
        self.setDocumentMode(True)
        self.setMinimumHeight(170)  # the plots shrink with the window; the canvas keeps its room

    def plots(self) -> list:
        """The plot widgets, in tab order."""
        return [self.widget(i) for i in range(self.count())]

    def show_plot(self, plot, title: str):
        """Show ``plot`` in its tab (added on first use) and the dock on screen."""
        index = self.indexOf(plot)
        if index < 0:
            index = self.addTab(plot, title)
        else:
            self.setTabText(index, title)
        self.setCurrentIndex(index)
        self.dock()

    def dock_widget(self) -> QDockWidget | None:
        """The dock widget that holds the tabs (None when not docked: never, or closed by the user)."""
        parent = self.parentWidget()
        return parent if isinstance(parent, QDockWidget) else None

    def dock(self):
        """Dock the tabs (again, if the user closed the dock) or show them (if the user hid it)."""
        window = getattr(self._viewer, "window", None)
        if window is None:
            return
        dock = self.dock_widget()
        if dock is None:  # never docked, or closed with its 'x' (napari then removes the dock widget)
            window.add_dock_widget(self, name=self.NAME, area="right", add_vertical_stretch=False)
            QTimer.singleShot(0, self._give_room)  # once the window has laid the new dock out
        elif not dock.isVisible():  # hidden with its 'hide' button
            dock.show()
        dock = self.dock_widget()
        if dock is not None:
            dock.raise_()

    def _give_room(self):
        """Ask the window for the plot's preferred height (a new dock otherwise gets what is left)."""
        dock, main = self.dock_widget(), None
        if dock is not None:
            main = dock.parentWidget()
        if isinstance(main, QMainWindow):
            main.resizeDocks([dock], [self.sizeHint().height()], Qt.Orientation.Vertical)
