import { createPinia } from 'pinia'
import {
  ActionSheet, Badge, Button, Cell, CellGroup, Checkbox, CheckboxGroup, ConfigProvider, Dialog, Empty, Field, Form, Icon, Image as VanImage,
  Loading, NavBar, NoticeBar, Popup, Radio, RadioGroup, Search, Tab, Tabbar, TabbarItem, Tabs, Tag, Uploader,
} from 'vant'
import 'vant/lib/index.css'
import { createApp } from 'vue'
import App from './App.vue'
import { router } from './router.js'
import './style.css'

const app = createApp(App)
app.use(createPinia())
app.use(router)
for (const c of [
  ActionSheet, Badge, Button, Cell, CellGroup, Checkbox, CheckboxGroup, ConfigProvider, Dialog, Empty, Field, Form, Icon, VanImage, Loading,
  NavBar, NoticeBar, Popup, Radio, RadioGroup, Search, Tab, Tabbar, TabbarItem, Tabs, Tag, Uploader,
]) app.use(c)
app.mount('#app')
